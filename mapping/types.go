package mapping

import (
	"math"
	"strconv"
	"strings"
)

// PayloadFormat selects what a data message carries.
type PayloadFormat uint8

// The payload formats.
const (
	// PayloadJSON is the JSON document with server, node, name, value, type,
	// status and timestamps (the default).
	PayloadJSON PayloadFormat = iota
	// PayloadValue is the bare JSON value, encoded as in the document.
	PayloadValue
)

// String returns "json" or "value".
func (p PayloadFormat) String() string {
	if p == PayloadValue {
		return "value"
	}
	return "json"
}

// MarshalText implements encoding.TextMarshaler.
func (p PayloadFormat) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler ("json" or "value").
func (p *PayloadFormat) UnmarshalText(b []byte) error {
	switch string(b) {
	case "json":
		*p = PayloadJSON
	case "value":
		*p = PayloadValue
	default:
		return valueErr(ErrSyntax, string(b), `unknown payload format; want "json" or "value"`)
	}
	return nil
}

// QoS is an MQTT quality of service level (MQTT 3.1.1, 4.3).
type QoS uint8

// The QoS levels.
const (
	AtMostOnce  QoS = 0
	AtLeastOnce QoS = 1
	ExactlyOnce QoS = 2
)

// String returns "0", "1" or "2".
func (q QoS) String() string { return strconv.Itoa(int(q)) }

// Valid reports whether q is 0, 1 or 2.
func (q QoS) Valid() bool { return q <= ExactlyOnce }

// MarshalText implements encoding.TextMarshaler.
func (q QoS) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler ("0", "1" or "2").
func (q *QoS) UnmarshalText(b []byte) error {
	switch string(b) {
	case "0", "1", "2":
		*q = QoS(b[0] - '0')
		return nil
	}
	return valueErr(ErrSyntax, string(b), "MQTT QoS must be 0, 1 or 2")
}

// DeadbandKind is the DeadbandType of a DataChangeFilter (Part 4, 7.22.2).
type DeadbandKind uint8

// The deadband kinds.
const (
	DeadbandNone     DeadbandKind = 0
	DeadbandAbsolute DeadbandKind = 1
	DeadbandPercent  DeadbandKind = 2
)

// String returns "none", "absolute" or "percent".
func (k DeadbandKind) String() string {
	switch k {
	case DeadbandAbsolute:
		return "absolute"
	case DeadbandPercent:
		return "percent"
	}
	return "none"
}

// MarshalText implements encoding.TextMarshaler.
func (k DeadbandKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *DeadbandKind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "none":
		*k = DeadbandNone
	case "absolute":
		*k = DeadbandAbsolute
	case "percent":
		*k = DeadbandPercent
	default:
		return valueErr(ErrSyntax, string(b), `unknown deadband type; want "none", "absolute" or "percent"`)
	}
	return nil
}

// Deadband is a monitored item's data change deadband.
type Deadband struct {
	Kind  DeadbandKind
	Value float64
}

// validate returns a reason when d is not usable.
func (d Deadband) validate() string {
	switch {
	case math.IsNaN(d.Value) || math.IsInf(d.Value, 0) || d.Value < 0:
		return "deadband must be a finite number >= 0"
	case d.Kind == DeadbandNone && d.Value != 0:
		return "deadband set without deadband_type (absolute or percent)"
	case d.Kind == DeadbandPercent && d.Value > 100:
		return "percent deadband must be in 0..100"
	case d.Kind > DeadbandPercent:
		return "unknown deadband type"
	}
	return ""
}

func (d Deadband) String() string {
	if d.Kind == DeadbandNone {
		return "none"
	}
	return d.Kind.String() + " " + strconv.FormatFloat(d.Value, 'g', -1, 64)
}

// joinQuoted is used in messages that list allowed values.
func joinQuoted(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}
