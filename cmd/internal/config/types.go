package config

import (
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/mapping"
)

// Typed configuration values. Each parses itself from text
// (encoding.TextUnmarshaler), so a bad value is reported at load time with
// its key path, and prints back with String.

func badValue(value, reason string) error {
	return &mapping.ValueError{Value: value, Reason: reason, Err: ErrInvalid}
}

// Duration is a time.Duration written as Go duration text ("500ms", "2m").
// Bare numbers are refused: "100" could mean anything.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the duration in Go's notation.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return badValue(string(b), `not a duration; write a number with a unit, e.g. "500ms", "5s", "2m"`)
	}
	*d = Duration(v)
	return nil
}

// SecurityPolicy is an OPC UA security policy (Part 7, 6.6). The deprecated
// Basic128Rsa15 and Basic256 are refused.
type SecurityPolicy uint8

// The security policies gopcua supports and rcbridge accepts.
const (
	PolicyNone SecurityPolicy = iota + 1
	PolicyBasic256Sha256
	PolicyAes128Sha256RsaOaep
	PolicyAes256Sha256RsaPss
)

// policyNames lists the policies in constant order, starting at 1.
const policyNames = "None Basic256Sha256 Aes128_Sha256_RsaOaep Aes256_Sha256_RsaPss"

// String returns the policy's short name ("Basic256Sha256").
func (p SecurityPolicy) String() string {
	if name, ok := enumName(policyNames, int(p)); ok {
		return name
	}
	return "SecurityPolicy(" + itoa(int(p)) + ")"
}

// URI returns the policy URI (http://opcfoundation.org/UA/SecurityPolicy#…).
func (p SecurityPolicy) URI() string { return ua.SecurityPolicyURIPrefix + p.String() }

// MarshalText implements encoding.TextMarshaler.
func (p SecurityPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText accepts the short name or the full policy URI.
func (p *SecurityPolicy) UnmarshalText(b []byte) error {
	s := strings.TrimPrefix(string(b), ua.SecurityPolicyURIPrefix)
	if i, ok := enumIndex(policyNames, s); ok {
		*p = SecurityPolicy(i)
		return nil
	}
	if s == "Basic128Rsa15" || s == "Basic256" {
		return badValue(string(b), "deprecated security policy (Part 7); use Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss")
	}
	return badValue(string(b), `unknown security policy; want "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep" or "Aes256_Sha256_RsaPss"`)
}

// SecurityMode is an OPC UA MessageSecurityMode (Part 4, 7.20).
type SecurityMode uint8

// The security modes.
const (
	ModeNone SecurityMode = iota + 1
	ModeSign
	ModeSignAndEncrypt
)

const modeNames = "None Sign SignAndEncrypt"

// String returns "None", "Sign" or "SignAndEncrypt".
func (m SecurityMode) String() string {
	if name, ok := enumName(modeNames, int(m)); ok {
		return name
	}
	return "SecurityMode(" + itoa(int(m)) + ")"
}

// UA returns gopcua's enum value.
func (m SecurityMode) UA() ua.MessageSecurityMode {
	switch m {
	case ModeSign:
		return ua.MessageSecurityModeSign
	case ModeSignAndEncrypt:
		return ua.MessageSecurityModeSignAndEncrypt
	}
	return ua.MessageSecurityModeNone
}

// MarshalText implements encoding.TextMarshaler.
func (m SecurityMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *SecurityMode) UnmarshalText(b []byte) error {
	if i, ok := enumIndex(modeNames, string(b)); ok {
		*m = SecurityMode(i)
		return nil
	}
	return badValue(string(b), `unknown security mode; want "None", "Sign" or "SignAndEncrypt"`)
}

// IdentityKind is how the bridge authenticates to a server (Part 4, 7.41).
type IdentityKind uint8

// The identity kinds.
const (
	IdentityAnonymous IdentityKind = iota + 1
	IdentityUsername
	IdentityCertificate
)

const identityNames = "anonymous username certificate"

// String returns "anonymous", "username" or "certificate".
func (k IdentityKind) String() string {
	if name, ok := enumName(identityNames, int(k)); ok {
		return name
	}
	return "IdentityKind(" + itoa(int(k)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (k IdentityKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *IdentityKind) UnmarshalText(b []byte) error {
	if i, ok := enumIndex(identityNames, string(b)); ok {
		*k = IdentityKind(i)
		return nil
	}
	return badValue(string(b), `unknown identity kind; want "anonymous", "username" or "certificate"`)
}

// BusKind selects the bus.
type BusKind uint8

// The bus kinds.
const (
	// BusEmbedded runs a NATS server inside rcbridge (for the demo and
	// single-machine setups); routes are NATS subjects.
	BusEmbedded BusKind = iota + 1
	// BusNATS connects to NATS servers.
	BusNATS
	// BusMQTT connects to an MQTT broker.
	BusMQTT
)

const busNames = "embedded nats mqtt"

// String returns "embedded", "nats" or "mqtt".
func (k BusKind) String() string {
	if name, ok := enumName(busNames, int(k)); ok {
		return name
	}
	return "BusKind(" + itoa(int(k)) + ")"
}

// Syntax returns the route syntax of the bus.
func (k BusKind) Syntax() mapping.Syntax {
	if k == BusMQTT {
		return mapping.MQTT
	}
	return mapping.NATS
}

// MarshalText implements encoding.TextMarshaler.
func (k BusKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *BusKind) UnmarshalText(b []byte) error {
	if i, ok := enumIndex(busNames, string(b)); ok {
		*k = BusKind(i)
		return nil
	}
	return badValue(string(b), `unknown bus kind; want "nats", "mqtt" or "embedded"`)
}

// LogLevel is a log/slog level written as text.
type LogLevel slog.Level

// Level returns the slog.Level.
func (l LogLevel) Level() slog.Level { return slog.Level(l) }

// String returns "debug", "info", "warn" or "error".
func (l LogLevel) String() string { return strings.ToLower(slog.Level(l).String()) }

// MarshalText implements encoding.TextMarshaler.
func (l LogLevel) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText accepts "debug", "info", "warn" and "error".
func (l *LogLevel) UnmarshalText(b []byte) error {
	switch string(b) {
	case "debug":
		*l = LogLevel(slog.LevelDebug)
	case "info":
		*l = LogLevel(slog.LevelInfo)
	case "warn":
		*l = LogLevel(slog.LevelWarn)
	case "error":
		*l = LogLevel(slog.LevelError)
	default:
		return badValue(string(b), `unknown log level; want "debug", "info", "warn" or "error"`)
	}
	return nil
}

// LogFormat selects the log handler.
type LogFormat uint8

// The log formats.
const (
	LogText LogFormat = iota + 1
	LogJSON
)

// String returns "text" or "json".
func (f LogFormat) String() string {
	if f == LogJSON {
		return "json"
	}
	return "text"
}

// MarshalText implements encoding.TextMarshaler.
func (f LogFormat) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText accepts "text" and "json".
func (f *LogFormat) UnmarshalText(b []byte) error {
	switch string(b) {
	case "text":
		*f = LogText
	case "json":
		*f = LogJSON
	default:
		return badValue(string(b), `unknown log format; want "text" or "json"`)
	}
	return nil
}

// ServerList is the servers of a [[map]] row: one ServerUri or glob as a
// string, or a list of them.
type ServerList []string

// UnmarshalText makes a single string a one-element list.
func (l *ServerList) UnmarshalText(b []byte) error {
	*l = ServerList{string(b)}
	return nil
}

// Secret is a password, token or similar. It never prints: String,
// GoString, LogValue, MarshalText and MarshalJSON all give "REDACTED".
// Value returns the secret itself.
type Secret struct {
	value string
}

// redacted is what a Secret prints as.
const redacted = "REDACTED"

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{value: s} }

// Value returns the secret text.
func (s Secret) Value() string { return s.value }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.value != "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, for %#v.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// UnmarshalText stores the text. Configuration files may not hold secrets
// (Validate reports one given inline), but the type must decode to say so.
func (s *Secret) UnmarshalText(b []byte) error {
	s.value = string(b)
	return nil
}

// enumName returns the i-th (from 1) name of a space-separated list.
func enumName(list string, i int) (string, bool) {
	names := strings.Fields(list)
	if i < 1 || i > len(names) {
		return "", false
	}
	return names[i-1], true
}

// enumIndex returns the position (from 1) of name in a space-separated list.
func enumIndex(list, name string) (int, bool) {
	for i, n := range strings.Fields(list) {
		if n == name {
			return i + 1, true
		}
	}
	return 0, false
}
