package mapping

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func plantConfig(t *testing.T, syn Syntax) Config {
	t.Helper()
	prefix := "rcbridge"
	return Config{
		Syntax: syn,
		Prefix: prefix,
		Servers: []Server{
			{URI: "urn:plant:line1"},
			{URI: "urn:plant:line2", Key: "line2"},
			{URI: "urn:other:press"},
		},
		Rows: []Row{
			{Servers: []string{"urn:plant:line*"}, Node: mustRefT(t, "nsu=urn:plant;s=Speed"), Settings: Settings{SamplingInterval: 100 * time.Millisecond, QueueSize: 10, Deadband: Deadband{Kind: DeadbandAbsolute, Value: 0.5}}},
			{Servers: []string{"urn:plant:line1"}, Node: mustRefT(t, "/Objects/2:Line1/2:SetPoint"), Name: "setpoint", Writable: true, Settings: Settings{QoS: AtLeastOnce, Retain: true}},
			{Servers: []string{"urn:other:press"}, Node: mustRefT(t, "ns=2;i=7"), Route: "{prefix}" + string(syn.Separator()) + "press" + string(syn.Separator()) + "{node}", Settings: Settings{Payload: PayloadValue}},
			{Servers: []string{"*"}, Object: mustRefT(t, "ns=2;s=Line"), Method: mustRefT(t, "ns=2;s=Line.Reset"), Arguments: []ValueType{{Builtin: 6, ValueRank: -1}}},
			{Servers: []string{"urn:plant:line2"}, Node: mustRefT(t, "ns=2;s=Target"), WriteOnly: true, Writable: true, CommandRoute: "{prefix}" + string(syn.Separator()) + "{server}" + string(syn.Separator()) + "target" + string(syn.Separator()) + "write"},
		},
	}
}

func TestTableNATS(t *testing.T) {
	cfg := plantConfig(t, NATS)
	tab, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type routes struct{ kind, name, route, cmd, result string }
	summarize := func(items []*Item) []routes {
		var out []routes
		for _, it := range items {
			out = append(out, routes{it.Kind.String(), it.Name, it.Route, it.CommandRoute, it.ResultRoute})
		}
		return out
	}
	got := summarize(tab.For("urn:plant:line1"))
	want := []routes{
		{"variable", "Speed", "rcbridge.urn:plant:line1.Speed", "", ""},
		{"variable", "setpoint", "rcbridge.urn:plant:line1.setpoint", "rcbridge.urn:plant:line1.setpoint.set", ""},
		{"method", "Line.Reset", "", "rcbridge.urn:plant:line1.Line%2EReset.call", ""},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("line1 items:\n got %+v\nwant %+v", got, want)
	}
	got = summarize(tab.For("urn:plant:line2"))
	want = []routes{
		{"variable", "Speed", "rcbridge.line2.Speed", "", ""},
		{"method", "Line.Reset", "", "rcbridge.line2.Line%2EReset.call", ""},
		{"variable", "Target", "", "rcbridge.line2.target.write", ""},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("line2 items:\n got %+v\nwant %+v", got, want)
	}
	press := tab.For("urn:other:press")
	if press[0].Route != "rcbridge.press.ns=2;i=7" || press[0].Payload != PayloadValue {
		t.Fatalf("press item %+v", press[0])
	}
	if tab.For("urn:unknown") != nil || tab.Allowed("urn:unknown") || !tab.Allowed("urn:plant:line1") {
		t.Fatal("unknown server handling")
	}
	if s, ok := tab.StatusRoute("urn:plant:line2"); !ok || s != "rcbridge.status.line2" {
		t.Fatalf("status route %q", s)
	}
	if s, _ := tab.StatusRoute("urn:plant:line1"); s != "rcbridge.status.urn:plant:line1" {
		t.Fatalf("status route %q", s)
	}
	it, ok := tab.Route("rcbridge.urn:plant:line1.setpoint.set")
	if !ok || it.Name != "setpoint" || !it.Writable || it.ServerURI != "urn:plant:line1" || it.Node.String() != "/Objects/2:Line1/2:SetPoint" {
		t.Fatalf("Route(set) = %+v, %v", it, ok)
	}
	if _, ok := tab.Route("rcbridge.urn:plant:line1.Speed"); ok {
		t.Fatal("a data route of a read-only row accepted commands")
	}
	if _, ok := tab.Route("rcbridge.urn:plant:line1.Speed.set"); ok {
		t.Fatal("a read-only row has a command route")
	}
	m, ok := tab.Route("rcbridge.urn:other:press.Line%2EReset.call")
	if !ok || m.Kind != Method || m.Object.String() != "ns=2;s=Line" || len(m.Arguments) != 1 {
		t.Fatalf("method route: %+v", m)
	}
	wantCmds := []string{
		"rcbridge.line2.Line%2EReset.call",
		"rcbridge.line2.target.write",
		"rcbridge.urn:other:press.Line%2EReset.call",
		"rcbridge.urn:plant:line1.Line%2EReset.call",
		"rcbridge.urn:plant:line1.setpoint.set",
	}
	if !slices.Equal(tab.CommandRoutes(), wantCmds) {
		t.Fatalf("CommandRoutes = %q", tab.CommandRoutes())
	}
	if tab.Syntax() != NATS || tab.Prefix() != "rcbridge" || len(tab.Servers()) != 3 || tab.Servers()[0].Key != "urn:plant:line1" {
		t.Fatalf("accessors: %v %v %+v", tab.Syntax(), tab.Prefix(), tab.Servers())
	}
	sp := tab.For("urn:plant:line1")[0]
	if sp.SamplingInterval != 100*time.Millisecond || sp.QueueSize != 10 || sp.Deadband.Kind != DeadbandAbsolute {
		t.Fatalf("monitoring parameters lost: %+v", sp)
	}
}

func TestTableMQTT(t *testing.T) {
	tab, err := New(plantConfig(t, MQTT))
	if err != nil {
		t.Fatal(err)
	}
	items := tab.For("urn:plant:line1")
	if items[0].Route != "rcbridge/urn:plant:line1/Speed" {
		t.Fatalf("route %q", items[0].Route)
	}
	sp := items[1]
	if sp.CommandRoute != "rcbridge/urn:plant:line1/setpoint/set" || sp.ResultRoute != "rcbridge/urn:plant:line1/setpoint/set/result" || sp.QoS != AtLeastOnce || !sp.Retain {
		t.Fatalf("setpoint %+v", sp)
	}
	if m := items[2]; m.CommandRoute != "rcbridge/urn:plant:line1/Line.Reset/call" || m.ResultRoute != m.CommandRoute+"/result" {
		t.Fatalf("method %+v", m)
	}
	press := tab.For("urn:other:press")[0]
	if press.Route != "rcbridge/press/ns=2;i=7" {
		t.Fatalf("press %q", press.Route)
	}
	if s, _ := tab.StatusRoute("urn:plant:line2"); s != "rcbridge/status/line2" {
		t.Fatalf("status %q", s)
	}
	if _, ok := tab.Route(sp.ResultRoute); ok {
		t.Fatal("a result topic was accepted as a command route")
	}
}

// TestTableReportsEveryError builds a table with many independent mistakes
// and checks that New reports each of them, with its key path.
func TestTableReportsEveryError(t *testing.T) {
	node := mustRefT(t, "ns=2;i=1")
	cfg := Config{
		Syntax: NATS,
		Prefix: "rc",
		Servers: []Server{
			{URI: "urn:a"},
			{URI: "urn:a"},
			{URI: "urn:b", Key: "b.1"},
			{URI: "urn:c", Key: "a"},
			{URI: "urn:d", Key: "a"},
			{URI: ""},
		},
		Rows: []Row{
			{Servers: []string{"urn:a"}, Node: node, Name: "x"}, // 0 fine
			{Servers: []string{"urn:a"}, Node: node, Name: "x"}, // 1 duplicate of 0
			{Servers: []string{"urn:zzz"}, Node: node},          // 2 unknown server
			{Servers: []string{"urn:q*"}, Node: node},           // 3 glob matches nothing
			{Node: node},                 // 4 no servers
			{Servers: []string{"urn:a"}}, // 5 no node
			{Servers: []string{"urn:a"}, Node: node, Object: node, Method: node},                                                           // 6 both
			{Servers: []string{"urn:a"}, Node: node, Name: "w", Writable: true, WriteOnly: true},                                           // 7 no command route
			{Servers: []string{"urn:a"}, Node: node, Name: "r", CommandRoute: "{prefix}.r.set"},                                            // 8 command on read-only
			{Servers: []string{"urn:a"}, Node: node, Route: "{prefix}.{bogus}"},                                                            // 9 unknown variable
			{Servers: []string{"urn:a"}, Node: node, Route: "{prefix}.{path}"},                                                             // 10 {path} without path
			{Servers: []string{"urn:a"}, Node: node, Route: "{prefix}.*.{name}"},                                                           // 11 wildcard
			{Servers: []string{"urn:a"}, Node: node, Name: "d", Settings: Settings{Deadband: Deadband{Kind: DeadbandPercent, Value: 150}}}, // 12
			{Servers: []string{"urn:a"}, Node: node, Name: "q", Settings: Settings{QoS: 3}},                                                // 13
			{Servers: []string{"urn:a"}, Object: node, Name: "m", Writable: true},                                                          // 14 method row without method, writable
			{Servers: []string{"urn:a"}, Node: node, Name: "args", Arguments: []ValueType{{Builtin: 6}}},                                   // 15 arguments on variable
			{Servers: []string{"urn:a"}, Node: node, Name: "ro", WriteOnly: true},                                                          // 16 does nothing
			{Servers: []string{"urn:a", `urn:a\`}, Node: node, Name: "g"},                                                                  // 17 bad glob
			{Servers: []string{"urn:a"}, Node: node, Name: "status"},                                                                       // 18 fine
		},
	}
	_, err := New(cfg)
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	msg := err.Error()
	want := []string{
		`servers[1].uri "urn:a": server listed twice`,
		`servers[2].key "b.1": not a valid token for nats; it would need escaping as "b%2E1"`,
		`servers[4].key "a": same key as servers[3]`,
		`servers[5].uri: server URI is empty`,
		`map[1].subject "rc.urn:a.x": duplicate route: also map[0] for server "urn:a"`,
		`map[2].servers "urn:zzz": not in [[servers]] (the allow-list)`,
		`map[3].servers "urn:q*": glob matches no server in [[servers]]`,
		`map[4].servers: needs at least one server URI or glob`,
		`map[5]: needs node or browse_path (a variable), or object and method (a method)`,
		`map[6]: set either node/browse_path (a variable) or object and method (a method), not both`,
		`map[7].writable: writable row without a command route: with publish = false, set command_subject`,
		`map[8].command_subject: command route on a row that is not writable (set writable = true)`,
		`map[9].subject "{prefix}.{bogus}": unknown variable {bogus}`,
		`map[10].subject "{prefix}.{path}": {path} needs a browse path`,
		`map[11].subject "rc.*.1": invalid subject: wildcard '*' at byte 3`,
		`map[12].deadband: percent deadband must be in 0..100`,
		`map[13].qos "3": MQTT QoS must be 0, 1 or 2`,
		`map[14].method: a method row needs the method`,
		`map[14].writable: writable applies to variables`,
		`map[15].arguments: arguments apply to method rows`,
		`map[16].publish: publish = false on a row that is not writable`,
		`map[17].servers[1] "urn:a\\": trailing '\' escapes nothing`,
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing error %q", w)
		}
	}
	if t.Failed() {
		t.Logf("all errors:\n%s", msg)
	}
	var pe *PathError
	if !errors.As(err, &pe) {
		t.Fatal("errors are not *PathError")
	}
	if !errors.Is(err, ErrDuplicateRoute) || !errors.Is(err, ErrUnknownServer) || !errors.Is(err, ErrTemplate) || !errors.Is(err, ErrInvalidRoute) || !errors.Is(err, ErrInvalidRow) {
		t.Fatal("sentinels not reachable through errors.Is")
	}
}

func TestTableDuplicates(t *testing.T) {
	node := mustRefT(t, "ns=2;i=1")
	tests := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"same name twice", Config{Syntax: NATS, Prefix: "p", Servers: []Server{{URI: "urn:a", Key: "a"}}, Rows: []Row{
			{Servers: []string{"urn:a"}, Node: node, Name: "x"},
			{Servers: []string{"urn:a"}, Node: mustRefT(t, "ns=2;i=2"), Name: "x"},
		}}, `map[1].subject "p.a.x": duplicate route: also map[0] for server "urn:a"`},
		{"data route equals a command route", Config{Syntax: NATS, Prefix: "p", Servers: []Server{{URI: "urn:a", Key: "a"}}, Rows: []Row{
			{Servers: []string{"urn:a"}, Node: node, Name: "x", Writable: true},
			{Servers: []string{"urn:a"}, Node: node, Route: "p.a.x.set"},
		}}, `map[1].subject "p.a.x.set": duplicate route: also map[0] for server "urn:a"`},
		{"data route equals a status route", Config{Syntax: MQTT, Prefix: "p", Servers: []Server{{URI: "urn:a", Key: "status"}, {URI: "urn:b", Key: "line"}}, Rows: []Row{
			{Servers: []string{"urn:a"}, Node: node, Name: "line"},
		}}, `map[0].topic "p/status/line": duplicate route: also the status topic of server "urn:b"`},
		{"result topic equals a data topic", Config{Syntax: MQTT, Prefix: "p", Servers: []Server{{URI: "urn:a", Key: "a"}}, Rows: []Row{
			{Servers: []string{"urn:a"}, Node: node, Name: "x", Writable: true},
			{Servers: []string{"urn:a"}, Node: node, Route: "p/a/x/set/result"},
		}}, `map[1].topic "p/a/x/set/result": duplicate route: also map[0]`},
		{"escaping keeps distinct keys distinct", Config{Syntax: NATS, Prefix: "p", Servers: []Server{{URI: "urn:a.b"}, {URI: "urn:a%2Eb"}}, Rows: []Row{
			{Servers: []string{"urn:a*"}, Node: node, Name: "x"},
		}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrDuplicateRoute) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v\nwant ErrDuplicateRoute containing %q", err, tt.msg)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"urn:plant:line*", "urn:plant:line1", true},
		{"urn:plant:line*", "urn:plant:line", true},
		{"urn:plant:line*", "urn:plant:press", false},
		{"*", "anything at all", true},
		{"urn:*:line?", "urn:plant:line7", true},
		{"urn:*:line?", "urn:plant:line77", false},
		{"urn:*:line?", "urn:plant:lineü", true},
		{"http://*/UA/*", "http://host.example/UA/Server", true},
		{`urn:literal\*`, "urn:literal*", true},
		{`urn:literal\*`, "urn:literalX", false},
		{"*a*b*c", "xxaxxbxxc", true},
		{"*a*b*c", "xxaxxbxx", false},
		{"a[1]", "a[1]", true},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.p, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
	if isGlob(`urn:x\*`) || !isGlob("urn:*") || !isGlob("a?") {
		t.Error("isGlob")
	}
}

// TestTableBadPrefixReportedOnce: every route starts with the prefix, so a
// bad prefix is one error, not one per route.
func TestTableBadPrefixReportedOnce(t *testing.T) {
	_, err := New(Config{Syntax: NATS, Prefix: "rc..bridge", Servers: []Server{{URI: "urn:a"}}, Rows: []Row{
		{Servers: []string{"urn:a"}, Node: mustRefT(t, "ns=2;i=1")},
		{Servers: []string{"urn:a"}, Node: mustRefT(t, "ns=2;i=2")},
		{Servers: []string{"urn:b"}, Node: mustRefT(t, "ns=2;i=3")},
	}})
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || lines[0] != `bus.prefix "rc..bridge": invalid subject: empty token at byte 3` || !strings.HasPrefix(lines[1], `map[2].servers "urn:b"`) {
		t.Fatalf("got:\n%s", err)
	}
}
