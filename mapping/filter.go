package mapping

import (
	"slices"
	"strings"
)

// Command filters.
//
// A command sent to a route that no row declares must still be answered
// (with "no command route"), so the bridge also subscribes a few filters
// that cover the shape of the command routes: "<prefix>.*.*.set" on NATS,
// "<prefix>/+/+/set" on MQTT. A filter here only ever uses the single-level
// wildcard as a whole token, never in its last token, and never the
// multi-level wildcard ('>', '#'): it matches routes of one fixed depth
// whose last token is literal. The reply to an MQTT command goes to the
// command topic + "/result", one level deeper and ending in "result", so no
// filter can catch the bridge's own results.

// resultToken is the last level of an MQTT result topic.
const resultToken = "result"

// Wildcard returns the single-level wildcard: "*" for NATS, "+" for MQTT.
func (s Syntax) Wildcard() string {
	if s == MQTT {
		return "+"
	}
	return "*"
}

// MultiWildcard returns the multi-level wildcard: ">" for NATS, "#" for
// MQTT.
func (s Syntax) MultiWildcard() string {
	if s == MQTT {
		return "#"
	}
	return ">"
}

// Overlap reports whether some route matches both a and b. Each may be a
// literal route or a filter whose tokens may be the single-level wildcard
// (Wildcard) and whose last token may be the multi-level wildcard
// (MultiWildcard). For a literal b it is "filter a matches route b".
func (s Syntax) Overlap(a, b string) bool {
	sep, wild, multi := string(s.Separator()), s.Wildcard(), s.MultiWildcard()
	for {
		at, arest, amore := strings.Cut(a, sep)
		bt, brest, bmore := strings.Cut(b, sep)
		if at == multi || bt == multi {
			return true
		}
		if at != bt && at != wild && bt != wild {
			return false
		}
		if amore != bmore {
			return false
		}
		if !amore {
			return true
		}
		a, b = arest, brest
	}
}

// IsFilter reports whether route holds a single-level wildcard token.
func (s Syntax) IsFilter(route string) bool {
	return slices.Contains(strings.Split(route, string(s.Separator())), s.Wildcard())
}

// EventsRoute returns the route of a server's events (gap events and the
// like): its status route + ".events" ("/events" on MQTT).
func (t *Table) EventsRoute(uri string) (string, bool) {
	st, ok := t.StatusRoute(uri)
	if !ok {
		return "", false
	}
	return t.syntax.Join(st, "events"), true
}

// CommandFilters returns the catch-all command filters, sorted: for the
// default command routes ("<prefix>.<server>.<name>.set" and ".call") and
// for every command route under the prefix, the route with each token
// between the prefix and the last one replaced by the single-level
// wildcard. A filter that would also match a data, status, events or
// result route of the table is left out, as is one ending in "result":
// the bridge must never answer anything but a command.
func (t *Table) CommandFilters() []string {
	syn, sep := t.syntax, string(t.syntax.Separator())
	type shape struct {
		depth int // tokens after the prefix, the last one included
		last  string
	}
	shapes := []shape{{3, "set"}, {3, "call"}}
	for r := range t.commands {
		rest, ok := strings.CutPrefix(r, t.prefix+sep)
		if !ok {
			continue
		}
		tokens := strings.Split(rest, sep)
		if len(tokens) >= 2 {
			shapes = append(shapes, shape{len(tokens), tokens[len(tokens)-1]})
		}
	}
	others := t.nonCommandRoutes()
	var out []string
	for _, sh := range shapes {
		if sh.last == resultToken || sh.last == syn.Wildcard() {
			continue
		}
		f := t.prefix + strings.Repeat(sep+syn.Wildcard(), sh.depth-1) + sep + sh.last
		if slices.Contains(out, f) || slices.ContainsFunc(others, func(r string) bool { return syn.Overlap(f, r) }) {
			continue
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// nonCommandRoutes returns every route the table uses for something other
// than receiving commands.
func (t *Table) nonCommandRoutes() []string {
	var out []string
	for _, s := range t.servers {
		st, _ := t.StatusRoute(s.URI)
		ev, _ := t.EventsRoute(s.URI)
		out = append(out, st, ev)
		for _, it := range t.For(s.URI) {
			for _, r := range []string{it.Route, it.ResultRoute} {
				if r != "" {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// ReadOnlyRoutes returns, for every published variable that is not
// writable, the route a write to it would use (its data route + ".set",
// "/set" on MQTT) where no other route of the table has it: the bridge
// answers writes there with "not writable".
func (t *Table) ReadOnlyRoutes() map[string]*Item {
	taken := make(map[string]bool)
	for _, r := range t.nonCommandRoutes() {
		taken[r] = true
	}
	for r := range t.commands {
		taken[r] = true
	}
	ro := make(map[string]*Item)
	for _, s := range t.servers {
		for _, it := range t.For(s.URI) {
			if it.Kind != Variable || it.Writable || it.Route == "" {
				continue
			}
			r := t.syntax.Join(it.Route, "set")
			if !taken[r] && ValidateRoute(t.syntax, r) == nil {
				ro[r] = it
			}
		}
	}
	return ro
}
