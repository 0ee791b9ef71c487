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

// TestCheckRoutesAtScale checks the routes of 1,000 servers with 100 rows:
// 100,000 literal write routes and the catch-all filters, once beside a
// subscription that holds 100,000 other literals. Comparing every pair of
// routes, this took minutes.
func TestCheckRoutesAtScale(t *testing.T) {
	var routes, others []string
	for s := range 1000 {
		for r := range 100 {
			routes = append(routes, fmt.Sprintf("p.s%04d.tag%03d.set", s, r))
			others = append(others, fmt.Sprintf("p.s%04d.tag%03d.write", s, r))
		}
	}
	call := append(slices.Clone(routes), "p.*.*.call")
	got, err := CheckRoutes(mapping.NATS, "testbus", call, others, literalNATS)
	if err != nil || len(got) != len(call) || got[0] != "p.*.*.call" {
		t.Fatalf("literals beside a filter of another shape: %d routes, %v", len(got), err)
	}
	got, err = CheckRoutes(mapping.NATS, "testbus", append(slices.Clone(routes), "p.*.*.set"), others, literalNATS)
	if err != nil || !slices.Equal(got, []string{"p.*.*.set"}) {
		t.Fatalf("literals under a filter: %d routes, %v", len(got), err)
	}
	_, err = CheckRoutes(mapping.NATS, "testbus", []string{"p.s0999.tag099.write", "p.*.tag007.set"}, append(others, routes[7]), literalNATS)
	if !errors.Is(err, bridge.ErrInvalidRoute) || !strings.Contains(err.Error(), `"p.s0999.tag099.write", already subscribed`) ||
		!strings.Contains(err.Error(), `"p.s0000.tag007.set", already subscribed`) {
		t.Fatalf("overlaps with active routes: %v", err)
	}
}
