package mapping

import (
	"errors"
	"unicode/utf8"

	"github.com/gopcua/opcua/ua"
)

// Command messages.
//
// A write to a writable variable (NATS request on its command subject, or
// MQTT publish on "<topic>/set"):
//
//	{"id": "c-17", "value": 42.5}
//
// A method call (on the method row's command route):
//
//	{"id": "c-18", "args": [1500, "ramp"]}
//
// "id" is optional (up to MaxCommandIDLen bytes) and comes back in the
// reply; MQTT clients need it to match results. The value uses the payload
// shapes (see AppendValue) and is coerced to the node's type (see
// DecodeValue). The reply (NATS: to the request's reply subject; MQTT: on
// the item's ResultRoute) is
//
//	{"id": "c-17", "ok": true, "status": {"code": 0, "name": "Good"}, "error": null}
//
// with "outputs": [{"type": "Double", "value": 1.5}, …] added for calls.

// Command size limits.
const (
	// MaxCommandSize is the largest command message accepted.
	MaxCommandSize = 1 << 20
	// MaxCommandIDLen is the longest correlation id accepted.
	MaxCommandIDLen = 256
)

// DecodeWrite decodes a write command for a node of type t. The id is
// returned whenever it could be read, also with an error, so that the error
// reply can carry it.
func DecodeWrite(payload []byte, t ValueType) (id string, v *ua.Variant, err error) {
	m, id, err := decodeEnvelope(payload, "value")
	if err != nil {
		return id, nil, err
	}
	x, ok := m["value"]
	if !ok {
		return id, nil, commandErr(`a write needs "value"`)
	}
	v, err = coerceVariant(x, t, "value")
	return id, v, err
}

// DecodeCall decodes a method call whose input arguments have the types
// args.
func DecodeCall(payload []byte, args []ValueType) (id string, vals []*ua.Variant, err error) {
	m, id, err := decodeEnvelope(payload, "args")
	if err != nil {
		return id, nil, err
	}
	raw, ok := m["args"]
	if !ok && len(args) > 0 {
		return id, nil, commandErr(`a call needs "args"`)
	}
	list, isList := raw.([]any)
	if ok && raw != nil && !isList {
		return id, nil, &CoercionError{Path: "args", Expected: "an array of arguments", Given: describe(raw), Err: ErrValue}
	}
	if len(list) != len(args) {
		return id, nil, &CoercionError{Path: "args", Expected: itoa(int64(len(args))) + " arguments", Given: itoa(int64(len(list))), Err: ErrValue}
	}
	vals = make([]*ua.Variant, len(args))
	for i, a := range args {
		if vals[i], err = coerceVariant(list[i], a, "args["+itoa(int64(i))+"]"); err != nil {
			return id, nil, err
		}
	}
	return id, vals, nil
}

func commandErr(reason string) error {
	return &reasonError{reason: reason, err: ErrCommand}
}

// decodeEnvelope parses the command object and its id; body names the one
// other member allowed.
func decodeEnvelope(payload []byte, body string) (map[string]any, string, error) {
	if len(payload) > MaxCommandSize {
		return nil, "", commandErr("command larger than " + itoa(MaxCommandSize) + " bytes")
	}
	x, err := parseJSON(payload)
	if err != nil {
		return nil, "", err
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, "", commandErr(`a command is a JSON object such as {"id": "c1", "` + body + `": …}, given ` + describe(x))
	}
	var id string
	if raw, ok := m["id"]; ok {
		s, isStr := raw.(string)
		switch {
		case !isStr:
			return nil, "", commandErr(`"id" must be a string, given ` + describe(raw))
		case len(s) > MaxCommandIDLen:
			return nil, "", commandErr(`"id" longer than ` + itoa(MaxCommandIDLen) + " bytes")
		case !utf8.ValidString(s):
			return nil, "", commandErr(`"id" is not valid UTF-8`)
		}
		id = s
	}
	for k := range m {
		if k != "id" && k != body {
			return nil, id, commandErr(`unknown member ` + quote(k) + `; a command has "id" and "` + body + `"`)
		}
	}
	return m, id, nil
}

// Reply is the outcome of one command.
type Reply struct {
	// ID is the command's correlation id.
	ID string
	// Status is the OPC UA result (the write's or call's status code). A
	// command rejected before reaching the server has CommandStatus(Err).
	Status ua.StatusCode
	// Err says why the command failed; nil on success.
	Err error
	// Outputs are a call's output arguments; nil for writes.
	Outputs []*ua.Variant
}

// OK reports whether the command succeeded: no error and a Good status.
func (r Reply) OK() bool { return r.Err == nil && r.Status&0xC0000000 == 0 }

// AppendReply appends the JSON reply for r.
func AppendReply(dst []byte, r Reply) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"ok":`...)
	if r.OK() {
		dst = append(dst, "true"...)
	} else {
		dst = append(dst, "false"...)
	}
	dst = append(dst, `,"status":`...)
	dst = appendStatus(dst, r.Status)
	dst = append(dst, `,"error":`...)
	switch {
	case r.Err != nil:
		dst = appendString(dst, r.Err.Error())
	case !r.OK():
		dst = appendString(dst, StatusName(r.Status))
	default:
		dst = append(dst, "null"...)
	}
	if r.Outputs != nil {
		dst = append(dst, `,"outputs":[`...)
		for i, v := range r.Outputs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAny(dst, v)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// CommandStatus maps an error from DecodeWrite or DecodeCall to the status
// code a reply carries: BadOutOfRange for range errors, BadTypeMismatch for
// values of the wrong type or shape, BadNotSupported for unsupported types,
// BadDecodingError for malformed commands, BadInternalError otherwise. A
// ua.StatusCode inside err wins.
func CommandStatus(err error) ua.StatusCode {
	var sc ua.StatusCode
	switch {
	case err == nil:
		return ua.StatusOK
	case errors.As(err, &sc):
		return sc
	case errors.Is(err, ErrOutOfRange):
		return ua.StatusBadOutOfRange
	case errors.Is(err, ErrUnsupported):
		return ua.StatusBadNotSupported
	case errors.Is(err, ErrValue):
		return ua.StatusBadTypeMismatch
	case errors.Is(err, ErrCommand):
		return ua.StatusBadDecodingError
	}
	return ua.StatusBadInternalError
}
