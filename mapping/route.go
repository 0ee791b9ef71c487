package mapping

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Syntax is the route syntax of a bus: NATS subjects or MQTT topics. A Table
// renders and validates every route for exactly one Syntax.
type Syntax uint8

// The route syntaxes.
const (
	// NATS subjects: tokens separated by '.', no '*', '>' or whitespace.
	NATS Syntax = iota + 1
	// MQTT topics: levels separated by '/', no '+', '#' or NUL.
	MQTT
)

// Route length limits. NATS has no fixed subject limit, but a subject must
// fit the server's control line (4 KiB by default) together with the reply
// subject and size; MQTT 3.1.1/5 limit a topic name to 65535 bytes.
const (
	MaxSubjectLen = 2048
	MaxTopicLen   = 65535
)

// String returns "nats" or "mqtt".
func (s Syntax) String() string {
	switch s {
	case NATS:
		return "nats"
	case MQTT:
		return "mqtt"
	}
	return "Syntax(" + itoa(int64(s)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (s Syntax) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts "nats" and
// "mqtt".
func (s *Syntax) UnmarshalText(b []byte) error {
	switch string(b) {
	case "nats":
		*s = NATS
	case "mqtt":
		*s = MQTT
	default:
		return valueErr(ErrSyntax, string(b), `unknown bus syntax; want "nats" or "mqtt"`)
	}
	return nil
}

// Separator returns the byte that separates tokens (NATS) or levels (MQTT).
func (s Syntax) Separator() byte {
	if s == MQTT {
		return '/'
	}
	return '.'
}

// Join joins parts with the syntax's separator.
func (s Syntax) Join(parts ...string) string {
	return strings.Join(parts, string(s.Separator()))
}

// noun names a route of this syntax in error messages.
func (s Syntax) noun() string {
	if s == MQTT {
		return "topic"
	}
	return "subject"
}

// Key escaping.
//
// EscapeKey turns any string (a server URI, a node name, a browse-path
// element) into one NATS token or one MQTT level. It is percent-encoding
// with a fixed set of bytes to escape:
//
//   - '%' itself, always, so that decoding is unambiguous;
//   - ASCII control characters, space and DEL;
//   - for NATS '.', '*' and '>'; for MQTT '/', '+' and '#';
//   - a '$' at the start of the key (brokers reserve '$' names);
//   - bytes of invalid UTF-8, and every byte of a Unicode space (e.g.
//     U+00A0, U+2028), C1 control, format character (e.g. U+200B, U+FEFF)
//     or noncharacter.
//
// An escaped byte becomes '%' followed by two upper-case hex digits; all
// other bytes (letters, digits, most punctuation, printable UTF-8) are kept.
// Because '%' is always escaped, UnescapeKey(EscapeKey(s)) == s for every s,
// so two different keys never render the same token: the escaping is
// injective. Example (NATS): "urn:acme.com:line 1" → "urn:acme%2Ecom:line%201".

// EscapeKey escapes key for use as one token (NATS) or level (MQTT).
func EscapeKey(syn Syntax, key string) string {
	if !needsEscape(syn, key) {
		return key
	}
	return string(AppendEscapedKey(make([]byte, 0, len(key)+8), syn, key))
}

// AppendEscapedKey appends EscapeKey(syn, key) to dst.
func AppendEscapedKey(dst []byte, syn Syntax, key string) []byte {
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if escapeASCII(syn, c, i) {
				dst = appendPct(dst, c)
			} else {
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(key[i:])
		if escapeRune(r, n) {
			for j := 0; j < n; j++ {
				dst = appendPct(dst, key[i+j])
			}
		} else {
			dst = append(dst, key[i:i+n]...)
		}
		i += n
	}
	return dst
}

func needsEscape(syn Syntax, key string) bool {
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if escapeASCII(syn, c, i) {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(key[i:])
		if escapeRune(r, n) {
			return true
		}
		i += n
	}
	return false
}

func escapeASCII(syn Syntax, c byte, pos int) bool {
	switch {
	case c <= ' ' || c == 0x7f || c == '%':
		return true
	case c == '$' && pos == 0:
		return true
	case syn == MQTT:
		return c == '/' || c == '+' || c == '#'
	default:
		return c == '.' || c == '*' || c == '>'
	}
}

func escapeRune(r rune, n int) bool {
	if r == utf8.RuneError && n == 1 {
		return true // invalid UTF-8 byte
	}
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || isNonCharacter(r)
}

func isNonCharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}

const upperHex = "0123456789ABCDEF"

func appendPct(dst []byte, c byte) []byte {
	return append(dst, '%', upperHex[c>>4], upperHex[c&0x0f])
}

// UnescapeKey reverses EscapeKey. It fails on a '%' that is not followed by
// two hex digits.
func UnescapeKey(s string) (string, error) {
	v, reason := unescapePct(s)
	if reason != "" {
		return "", valueErr(ErrSyntax, s, reason)
	}
	return v, nil
}

// unescapePct decodes %XX escapes; reason is set when s is malformed.
func unescapePct(s string) (v, reason string) {
	if strings.IndexByte(s, '%') < 0 {
		return s, ""
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			return "", "bad percent escape at byte " + itoa(int64(i))
		}
		b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
		i += 2
	}
	return string(b), ""
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// ValidateRoute reports whether route is a subject (NATS) or topic (MQTT)
// that the bus accepts for publishing, and that rcbridge accepts as a route.
//
// NATS: non-empty, at most MaxSubjectLen bytes, valid UTF-8, tokens
// separated by single dots (no empty token), no '*', '>', whitespace or
// control characters anywhere.
//
// MQTT: non-empty, at most MaxTopicLen bytes, valid UTF-8, no '+', '#', NUL
// or control characters; rcbridge also refuses empty levels ("a//b", a
// leading or trailing '/'), which brokers accept but which are nearly always
// a mistake.
//
// Both: no leading '$' (brokers reserve those names for themselves).
func ValidateRoute(syn Syntax, route string) error {
	bad := func(reason string) error {
		return valueErr(ErrInvalidRoute, route, "invalid "+syn.noun()+": "+reason)
	}
	max := MaxSubjectLen
	if syn == MQTT {
		max = MaxTopicLen
	}
	switch {
	case syn != NATS && syn != MQTT:
		return bad("unknown bus syntax")
	case route == "":
		return bad("empty")
	case len(route) > max:
		return bad("longer than " + itoa(int64(max)) + " bytes")
	case !utf8.ValidString(route):
		return bad("not valid UTF-8")
	case route[0] == '$':
		return bad("names starting with '$' are reserved by the broker")
	}
	sep := syn.Separator()
	prev := sep // a separator "before" the start makes a leading one an empty token
	for i, r := range route {
		switch {
		case r == rune(sep):
			if prev == sep {
				return bad("empty " + tokenNoun(syn) + " at byte " + itoa(int64(i)))
			}
		case syn == NATS && (r == '*' || r == '>'):
			return bad("wildcard " + strconv.QuoteRune(r) + " at byte " + itoa(int64(i)))
		case syn == MQTT && (r == '+' || r == '#'):
			return bad("wildcard " + strconv.QuoteRune(r) + " at byte " + itoa(int64(i)))
		case r == 0 || unicode.IsControl(r):
			return bad("control character at byte " + itoa(int64(i)))
		case syn == NATS && unicode.IsSpace(r):
			return bad("whitespace at byte " + itoa(int64(i)))
		}
		if r < utf8.RuneSelf {
			prev = byte(r)
		} else {
			prev = 0
		}
	}
	if prev == sep {
		return bad("empty " + tokenNoun(syn) + " at the end")
	}
	return nil
}

func tokenNoun(syn Syntax) string {
	if syn == MQTT {
		return "level"
	}
	return "token"
}
