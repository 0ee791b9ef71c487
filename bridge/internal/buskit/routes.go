package buskit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/mapping"
)

// CheckRoutes checks the routes of one CommandSource.Subscribe call and
// returns the ones to subscribe at the broker: every filter, and every
// literal route that no filter of the same call matches (the filter
// delivers it, so that no command arrives twice).
//
// A route is literal, or a filter whose tokens may be the single-level
// wildcard of syn as a whole token, except the last one; literal checks
// a route with each wildcard replaced by a plain token. Refused, each
// with an error wrapping bridge.ErrInvalidRoute and quoting the route:
// an empty list, an invalid route, two routes of the call that are equal
// or two filters that overlap, and a route that overlaps one of active
// (the routes of the adapter's other subscriptions).
func CheckRoutes(syn mapping.Syntax, adapter string, routes, active []string, literal func(string) error) ([]string, error) {
	if len(routes) == 0 {
		return nil, fmt.Errorf("%s: subscribe: no routes: %w", adapter, bridge.ErrInvalidRoute)
	}
	var errs []error
	bad := func(r, why string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: route %q: %s: %w: %w", adapter, r, why, bridge.ErrInvalidRoute, err))
			return
		}
		errs = append(errs, fmt.Errorf("%s: route %q: %s: %w", adapter, r, why, bridge.ErrInvalidRoute))
	}
	// Pairs are not compared one by one: 1,000 servers with 100 rows make
	// 100,000 routes, and that took minutes.
	activeIdx := NewRouteIndex(syn, active)
	seen := make(map[string]bool, len(routes))
	var filters []string
	for _, r := range routes {
		if err := checkFilter(syn, r, literal); err != nil {
			bad(r, "not a command route", err)
			continue
		}
		isFilter := syn.IsFilter(r)
		if seen[r] {
			bad(r, fmt.Sprintf("overlaps %q of the same call", r), nil)
		} else if isFilter {
			for _, o := range filters {
				if syn.Overlap(o, r) {
					bad(r, fmt.Sprintf("overlaps %q of the same call", o), nil)
				}
			}
		}
		seen[r] = true
		if isFilter {
			filters = append(filters, r)
		}
		if j := activeIdx.First(r); j >= 0 {
			bad(r, fmt.Sprintf("overlaps %q, already subscribed", active[j]), nil)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	broker := slices.Clone(filters)
	for _, r := range routes {
		if !syn.IsFilter(r) && !slices.ContainsFunc(filters, func(f string) bool { return syn.Overlap(f, r) }) {
			broker = append(broker, r)
		}
	}
	return broker, nil
}

// RouteIndex finds which of a list of routes (subjects, topics, filters)
// overlap a given route without comparing it with each: a plain route (no
// wildcard token) overlaps only an equal route or one with a wildcard, so
// it costs a map lookup and a scan of the few routes with wildcards.
type RouteIndex struct {
	syn    mapping.Syntax
	routes []string
	at     map[string]int // first index of each route
	wild   []int          // the routes with a wildcard, in order
}

// NewRouteIndex indexes routes; the slice must not change afterwards.
func NewRouteIndex(syn mapping.Syntax, routes []string) *RouteIndex {
	x := &RouteIndex{syn: syn, routes: routes, at: make(map[string]int, len(routes))}
	for j, r := range routes {
		if _, ok := x.at[r]; !ok {
			x.at[r] = j
		}
		if !x.plain(r) {
			x.wild = append(x.wild, j)
		}
	}
	return x
}

// First returns the index of the first route that overlaps r
// (mapping.Syntax.Overlap), or -1.
func (x *RouteIndex) First(r string) int {
	if !x.plain(r) {
		return slices.IndexFunc(x.routes, func(a string) bool { return x.syn.Overlap(a, r) })
	}
	first := -1
	if j, ok := x.at[r]; ok {
		first = j
	}
	for _, j := range x.wild {
		if first >= 0 && j > first {
			break
		}
		if x.syn.Overlap(x.routes[j], r) {
			return j
		}
	}
	return first
}

// plain reports whether no token of r is a wildcard.
func (x *RouteIndex) plain(r string) bool {
	for t := range strings.SplitSeq(r, string(x.syn.Separator())) {
		if t == x.syn.Wildcard() || t == x.syn.MultiWildcard() {
			return false
		}
	}
	return true
}

// checkFilter checks r as a literal route after replacing each wildcard
// token, and refuses a wildcard in the last token.
func checkFilter(syn mapping.Syntax, r string, literal func(string) error) error {
	if r == "" {
		return errors.New("empty")
	}
	sep, wild := string(syn.Separator()), syn.Wildcard()
	tokens := strings.Split(r, sep)
	if tokens[len(tokens)-1] == wild {
		return errors.New("a wildcard in the last " + noun(syn))
	}
	for i, t := range tokens {
		if t == wild {
			tokens[i] = "w"
		}
	}
	return literal(strings.Join(tokens, sep))
}

func noun(syn mapping.Syntax) string {
	if syn == mapping.MQTT {
		return "level"
	}
	return "token"
}

// MatchFilter returns the first of filters that matches the literal
// route, or "" when none does.
func MatchFilter(syn mapping.Syntax, filters []string, route string) string {
	for _, f := range filters {
		if syn.Overlap(f, route) {
			return f
		}
	}
	return ""
}
