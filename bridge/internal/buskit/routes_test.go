package buskit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/mapping"
)

// literalNATS stands in for an adapter's literal-route check.
func literalNATS(r string) error {
	if strings.ContainsAny(r, "*> ") || strings.Contains(r, "..") {
		return fmt.Errorf("not literal: %q", r)
	}
	return nil
}

func TestCheckRoutes(t *testing.T) {
	for _, tc := range []struct {
		name           string
		routes, active []string
		broker         []string // nil: refused
		errHas         string
	}{
		{"literals only", []string{"p.a.set", "p.b.set"}, nil, []string{"p.a.set", "p.b.set"}, ""},
		{"covered literal not subscribed twice", []string{"p.l.x.set", "p.*.*.set", "p.l.write"}, nil, []string{"p.*.*.set", "p.l.write"}, ""},
		{"two filters of other shapes", []string{"p.*.*.set", "p.*.*.call"}, nil, []string{"p.*.*.set", "p.*.*.call"}, ""},
		{"no routes", nil, nil, nil, "no routes"},
		{"empty route", []string{""}, nil, nil, "empty"},
		{"wildcard last", []string{"p.a.*"}, nil, nil, "a wildcard in the last token"},
		{"multi-level", []string{"p.>"}, nil, nil, "not literal"},
		{"partial wildcard", []string{"p.a*.set"}, nil, nil, "not literal"},
		{"equal routes", []string{"p.a.set", "p.a.set"}, nil, nil, `overlaps "p.a.set" of the same call`},
		{"overlapping filters", []string{"p.*.x.set", "p.y.*.set"}, nil, nil, `overlaps "p.*.x.set" of the same call`},
		{"under an active filter", []string{"p.a.b.set"}, []string{"p.*.*.set"}, nil, `overlaps "p.*.*.set", already subscribed`},
		{"over an active literal", []string{"p.*.*.set"}, []string{"p.a.b.set"}, nil, `overlaps "p.a.b.set", already subscribed`},
		{"beside active routes", []string{"p.*.*.call"}, []string{"p.*.*.set", "p.a.b.set"}, []string{"p.*.*.call"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckRoutes(mapping.NATS, "testbus", tc.routes, tc.active, literalNATS)
			if tc.broker == nil {
				if !errors.Is(err, bridge.ErrInvalidRoute) || !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "testbus: ") {
					t.Fatalf("error %v, want ErrInvalidRoute saying %q", err, tc.errHas)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.broker) {
				t.Fatalf("CheckRoutes = %q, %v; want %q", got, err, tc.broker)
			}
		})
	}
	if got := MatchFilter(mapping.MQTT, []string{"p/+/+/call", "p/+/+/set"}, "p/a/b/set"); got != "p/+/+/set" {
		t.Errorf("MatchFilter = %q", got)
	}
	if got := MatchFilter(mapping.MQTT, []string{"p/+/+/set"}, "p/a/b/set/result"); got != "" {
		t.Errorf("MatchFilter matched a result topic: %q", got)
	}
}
