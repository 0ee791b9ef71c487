package mapping

import (
	"slices"
	"testing"
)

func TestSyntaxOverlap(t *testing.T) {
	for _, tc := range []struct {
		syn  Syntax
		a, b string
		want bool
	}{
		{NATS, "p.*.*.set", "p.line1.speed.set", true},
		{NATS, "p.*.*.set", "p.line1.speed", false},
		{NATS, "p.*.*.set", "p.line1.speed.set.more", false},
		{NATS, "p.*.*.set", "p.line1.speed.call", false},
		{NATS, "p.*.*.set", "q.line1.speed.set", false},
		{NATS, "p.*.x.set", "p.y.*.set", true},
		{NATS, "p.*.x.set", "p.y.z.set", false},
		{NATS, "a", "a", true},
		{NATS, "a", "a.b", false},
		{NATS, "p.+.x", "p.y.x", false}, // '+' is a literal on NATS
		{MQTT, "p/+/+/set", "p/line1/speed/set", true},
		{MQTT, "p/+/+/set", "p/line1/speed/set/result", false},
		{MQTT, "p/+/+/set", "p/line1/speed", false},
		{MQTT, "p/*/x", "p/y/x", false}, // '*' is a literal on MQTT
		{MQTT, "p//x", "p/+/x", true},   // an empty MQTT level is a level
		{NATS, "p.>", "p.*.*.set", true},
		{NATS, "p.>", "p", false}, // '>' needs at least one token
		{NATS, "p.*.>", "p.a.b.set", true},
		{NATS, "q.>", "p.a.b.set", false},
		{NATS, ">", "p.*.*.set", true},
		{MQTT, "p/#", "p/+/+/set", true},
	} {
		if got := tc.syn.Overlap(tc.a, tc.b); got != tc.want {
			t.Errorf("%s Overlap(%q, %q) = %v, want %v", tc.syn, tc.a, tc.b, got, tc.want)
		}
		if got := tc.syn.Overlap(tc.b, tc.a); got != tc.want {
			t.Errorf("%s Overlap(%q, %q) = %v, want %v (not symmetric)", tc.syn, tc.b, tc.a, got, tc.want)
		}
	}
	if !NATS.IsFilter("p.*.x") || NATS.IsFilter("p.a*.x") || !MQTT.IsFilter("p/+/x") || MQTT.IsFilter("p/*/x") {
		t.Error("IsFilter")
	}
}

func TestCommandFilters(t *testing.T) {
	for _, syn := range []Syntax{NATS, MQTT} {
		t.Run(syn.String(), func(t *testing.T) {
			s, w := string(syn.Separator()), syn.Wildcard()
			tab, err := New(plantConfig(t, syn))
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"rcbridge" + s + w + s + w + s + "call",
				"rcbridge" + s + w + s + w + s + "set",
				"rcbridge" + s + w + s + w + s + "write",
			}
			if got := tab.CommandFilters(); !slices.Equal(got, want) {
				t.Fatalf("CommandFilters = %q, want %q", got, want)
			}
			for _, f := range want {
				for _, r := range tab.nonCommandRoutes() {
					if syn.Overlap(f, r) {
						t.Errorf("filter %q matches the route %q", f, r)
					}
				}
			}
			for _, r := range tab.CommandRoutes() {
				if !slices.ContainsFunc(want, func(f string) bool { return syn.Overlap(f, r) }) {
					t.Errorf("command route %q not covered by a filter", r)
				}
			}
			ev, _ := tab.EventsRoute("urn:plant:line2")
			if ev != "rcbridge"+s+"status"+s+"line2"+s+"events" {
				t.Errorf("EventsRoute = %q", ev)
			}
		})
	}
}

// TestCommandFiltersNeverCatchData: a data route in the shape of a command
// route drops that filter; a command route ending in "result" gives none.
func TestCommandFiltersNeverCatchData(t *testing.T) {
	cfg := plantConfig(t, MQTT)
	cfg.Rows = append(cfg.Rows,
		Row{Servers: []string{"urn:plant:line1"}, Node: mustRefT(t, "ns=2;s=Odd"), Route: "{prefix}/odd/data/call"},
		Row{Servers: []string{"urn:plant:line1"}, Node: mustRefT(t, "ns=2;s=Res"), Writable: true, WriteOnly: true, CommandRoute: "{prefix}/x/y/result"},
	)
	tab, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rcbridge/+/+/set", "rcbridge/+/+/write"}
	if got := tab.CommandFilters(); !slices.Equal(got, want) {
		t.Fatalf("CommandFilters = %q, want %q", got, want)
	}
}

func TestReadOnlyRoutes(t *testing.T) {
	tab, err := New(plantConfig(t, NATS))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for r, it := range tab.ReadOnlyRoutes() {
		if it.Writable || it.Route+".set" != r {
			t.Errorf("%q: item %+v", r, it)
		}
		got = append(got, r)
	}
	slices.Sort(got)
	want := []string{"rcbridge.line2.Speed.set", "rcbridge.press.ns=2;i=7.set", "rcbridge.urn:plant:line1.Speed.set"}
	if !slices.Equal(got, want) {
		t.Fatalf("ReadOnlyRoutes = %q, want %q", got, want)
	}
}
