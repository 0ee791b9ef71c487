package natsbus

import (
	"errors"
	"fmt"
	"strings"
)

// errSubject is the reason wrapped by subject validation errors.
var errSubject = errors.New("not a literal NATS subject")

// validSubject checks that s is a literal subject: dot-separated non-empty
// tokens without wildcards or whitespace.
func validSubject(s string) error {
	return checkSubject(s, false)
}

// validFilter is validSubject that also allows the wildcards * and >.
func validFilter(s string) error {
	return checkSubject(s, true)
}

func checkSubject(s string, wildcards bool) error {
	if s == "" {
		return fmt.Errorf("subject %q: empty: %w", s, errSubject)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			switch c {
			case ' ', '\t', '\r', '\n', 0:
				return fmt.Errorf("subject %q: whitespace or NUL at byte %d: %w", s, i, errSubject)
			case '*', '>':
				if !wildcards {
					return fmt.Errorf("subject %q: wildcard %q at byte %d: %w", s, c, i, errSubject)
				}
			}
			if c != '.' {
				continue
			}
		}
		tok := s[start:i]
		switch {
		case tok == "":
			return fmt.Errorf("subject %q: empty token at byte %d: %w", s, start, errSubject)
		case strings.ContainsAny(tok, "*>") && len(tok) > 1:
			return fmt.Errorf("subject %q: wildcard inside token %q: %w", s, tok, errSubject)
		case tok == ">":
			if i != len(s) {
				return fmt.Errorf("subject %q: '>' must be the last token: %w", s, errSubject)
			}
		}
		start = i + 1
	}
	return nil
}

// validKVKey reports whether k is a JetStream KV key: [-/_=.a-zA-Z0-9]+,
// not starting or ending with '.'.
func validKVKey(k string) bool {
	if k == "" || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '/', c == '_', c == '=', c == '.':
		default:
			return false
		}
	}
	return true
}

// validName reports whether n is a stream or bucket name: letters, digits,
// '-' and '_'.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
