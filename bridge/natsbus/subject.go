package natsbus

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rcbridge/rcbridge/bridge/internal/buskit"
	"github.com/rcbridge/rcbridge/mapping"
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
		case wildcards && len(tok) > 1 && strings.ContainsAny(tok, "*>"): // without wildcards, none got here
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

// maxCapturedCache bounds the subjects captureCache remembers; beyond it
// every check matches the filters again.
const maxCapturedCache = 1 << 16

// captureCache answers whether the JetStream stream captures a subject,
// remembering the answers. Safe for concurrent use; the zero value has no
// filters.
type captureCache struct {
	mu      sync.RWMutex
	filters []string
	index   *buskit.RouteIndex // of filters
	known   map[string]bool
}

// set replaces the stream's subject filters.
func (c *captureCache) set(filters []string) {
	c.mu.Lock()
	c.filters = slices.Clone(filters)
	c.index = buskit.NewRouteIndex(mapping.NATS, c.filters)
	c.known = make(map[string]bool)
	c.mu.Unlock()
}

// captures reports whether subject matches one of the filters.
func (c *captureCache) captures(subject string) bool {
	c.mu.RLock()
	v, ok := c.known[subject]
	index := c.index
	c.mu.RUnlock()
	if ok {
		return v
	}
	// The index matches like mapping.NATS.Overlap, without a scan of the
	// filters: a stream of 1,000 servers lists 1,000 events subjects.
	v = index != nil && index.First(subject) >= 0
	c.mu.Lock()
	if c.known != nil && len(c.known) < maxCapturedCache {
		c.known[subject] = v
	}
	c.mu.Unlock()
	return v
}

// overlapping returns a filter of the stream that matches some subject
// route (a subject or a filter with single-level wildcards) matches, or "".
func (c *captureCache) overlapping(route string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.index == nil {
		return ""
	}
	if j := c.index.First(route); j >= 0 {
		return c.filters[j]
	}
	return ""
}
