package mqttbus

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// errTopic is the reason wrapped by topic validation errors.
var errTopic = errors.New("not a literal MQTT topic")

// validTopic checks that s can be published to: non-empty UTF-8 of at
// most 65535 bytes without wildcards (+ #), NUL, or a leading '$'
// (reserved for the broker). MQTT 3.1.1, 4.7.
func validTopic(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("topic %q: empty: %w", s, errTopic)
	case len(s) > 65535:
		return fmt.Errorf("topic of %d bytes: longer than 65535: %w", len(s), errTopic)
	case !utf8.ValidString(s):
		return fmt.Errorf("topic %q: not UTF-8: %w", s, errTopic)
	case strings.ContainsAny(s, "+#\x00"):
		return fmt.Errorf("topic %q: wildcard or NUL: %w", s, errTopic)
	case s[0] == '$':
		return fmt.Errorf("topic %q: '$' topics belong to the broker: %w", s, errTopic)
	}
	return nil
}

// resultSuffix: the result of a command that arrived on topic T is
// published on T/result (the mapping renders T as `<topic>/set` or
// `<topic>/call`).
const resultSuffix = "/result"
