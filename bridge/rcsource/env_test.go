package rcsource_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

func TestMain(m *testing.M) {
	if rctest.IsLoadProcess() { // started by BenchmarkEndToEnd
		os.Exit(serveLoad())
	}
	// gopcua's server (behind rctest) logs through the standard logger, and
	// keeps a goroutine per subscription until the subscription's lifetime
	// ends, even after CloseSession and Close: that goroutine is the test
	// server's, not ours.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/gopcua/opcua/server.(*Subscription).run"))
}

// serveLoad runs the load process of BenchmarkEndToEnd: with benchNATSEnv
// set, a nats-server on a free loopback port first, whose URL it prints.
func serveLoad() int {
	if os.Getenv(benchNATSEnv) != "" {
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
		if err != nil {
			fmt.Fprintf(os.Stderr, "nats-server: %v\n", err)
			return 2
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			fmt.Fprintln(os.Stderr, "nats-server: not ready within 10 s")
			return 2
		}
		defer ns.WaitForShutdown()
		defer ns.Shutdown()
		fmt.Printf("nats %s\n", ns.ClientURL())
	}
	return rctest.ServeLoadProcess(os.Stdin, os.Stdout)
}

// The test server's nodes (rctest namespace, index 1).
const (
	testServerURI = "urn:rcbridge:bridge-test"
	testNS        = "urn:rcbridge:bridge-test:ns"
	prefix        = "rcb"
)

// plant is an rctest server with the nodes the tests map.
type plant struct {
	*rctest.Server
	speed, level, mode, locked, temp, methods *ua.NodeID
}

func newPlant(t testing.TB, uri string) *plant {
	t.Helper()
	srv, err := rctest.NewServer(rctest.Options{ServerURI: uri, NamespaceURI: testNS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	p := &plant{Server: srv}
	p.speed = srv.AddVariable("Speed", 1500.0, true)
	p.level = srv.AddVariable("Level", byte(7), true)
	p.mode = srv.AddVariable("Mode", "auto", true)
	p.locked = srv.AddVariable("Locked", int32(42), false) // mapped writable, but the server says no
	p.temp = srv.AddVariable("Temp", 20.5, false)          // mapped read-only
	p.methods = srv.AddObject(nil, "Methods")
	srv.AddMethod(p.methods, "Add", func(args []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
		if len(args) != 2 {
			return nil, ua.StatusBadArgumentsMissing
		}
		a, ok1 := args[0].Value().(float64)
		b, ok2 := args[1].Value().(float64)
		if !ok1 || !ok2 {
			return nil, ua.StatusBadTypeMismatch
		}
		return []*ua.Variant{ua.MustVariant(a + b)}, ua.StatusOK
	})
	return p
}

// value returns the value of node inside the server.
func (p *plant) value(t testing.TB, node *ua.NodeID) any {
	t.Helper()
	n := p.NS.Node(node)
	if n == nil {
		t.Fatalf("no node %v", node)
	}
	dv := n.Value()
	if dv == nil || dv.Value == nil {
		return nil
	}
	return dv.Value.Value()
}

// testRows maps the plant's nodes.
func testRows() []mapping.Row {
	node := func(s string) mapping.NodeRef {
		r, err := mapping.ParseNodeRef("nsu=" + testNS + ";s=" + s)
		if err != nil {
			panic(err)
		}
		return r
	}
	double, _ := mapping.ParseValueType("Double")
	return []mapping.Row{
		{Servers: []string{"*"}, Node: node("Speed"), Name: "speed", Writable: true},
		{Servers: []string{"*"}, Node: node("Level"), Name: "level", Writable: true},
		{Servers: []string{"*"}, Node: node("Mode"), Name: "mode", Writable: true},
		{Servers: []string{"*"}, Node: node("Locked"), Name: "locked", Writable: true},
		{Servers: []string{"*"}, Node: node("Temp"), Name: "temp"},
		{Servers: []string{"*"}, Node: node("Missing"), Name: "missing", Writable: true},
		{Servers: []string{"*"}, Object: node("Methods"), Method: node("Methods.Add"), Name: "add",
			Arguments: []mapping.ValueType{double, double}},
	}
}

// busKind selects the bus of an env.
type busKind uint8

const (
	busNATS busKind = iota
	busJetStream
	busMQTT
)

func (k busKind) String() string { return [...]string{"nats", "jetstream", "mqtt"}[k] }

// env is a bridge wired like the daemon wires it (e2e.StartBridge) on a
// real bus adapter and an embedded broker (nats-server or mochi-mqtt),
// with a user of the bus watching the status routes.
type env struct {
	*e2e.Bridge
	t      *testing.T
	kind   busKind
	nats   *e2e.NATS
	mochi  *e2e.Mochi
	client e2e.Client    // a user of the bus
	status *e2e.Recorder // the status routes
	data   *e2e.Recorder // the data routes of server s1
}

type envConfig struct {
	bus     busKind
	servers []string // ServerUris; default testServerURI
	rows    []mapping.Row
	tune    func(*bridge.Config)
}

func newEnv(t *testing.T, ec envConfig) *env {
	t.Helper()
	if len(ec.servers) == 0 {
		ec.servers = []string{testServerURI}
	}
	if ec.rows == nil {
		ec.rows = testRows()
	}
	e := &env{t: t, kind: ec.bus}
	var bus bridge.Bus
	syntax := mapping.NATS
	if ec.bus == busMQTT {
		syntax = mapping.MQTT
		e.mochi = e2e.StartMochi(t)
		bus = e2e.OpenMQTTBus(t, e.mochi.URL())
		e.client = e2e.DialMQTT(t, e.mochi.URL())
		e.status = e.client.Watch(t, prefix+"/status/#")
		e.data = e.client.Watch(t, prefix+"/s1/#")
	} else {
		e.nats = e2e.StartNATS(t, ec.bus == busJetStream)
		bus = e2e.OpenNATSBus(t, e.nats.URL(), ec.bus == busJetStream, prefix)
		e.client = e2e.DialNATS(t, e.nats.URL())
		e.status = e.client.Watch(t, prefix+".status.>")
		e.data = e.client.Watch(t, prefix+".s1.>")
	}
	servers := make([]mapping.Server, len(ec.servers))
	for i, u := range ec.servers {
		servers[i] = mapping.Server{URI: u, Key: fmt.Sprintf("s%d", i+1)}
	}
	e.Bridge = e2e.StartBridge(t, e2e.BridgeConfig{Servers: servers, Syntax: syntax, Prefix: prefix, Rows: ec.rows, Bus: bus, Tune: ec.tune})
	return e
}

// route joins route levels with the bus's separator.
func (e *env) route(parts ...string) string { return e2e.Route(e.client, parts...) }

// dial makes p reverse-connect to the bridge and returns the relay.
func (e *env) dial(p *plant) *rctest.Conn {
	e.t.Helper()
	c, err := p.Dial(e2e.WithTimeout(e.t, 10*time.Second), e.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// publishedRows are the rows of testRows whose nodes exist and publish.
var publishedRows = []string{"speed", "level", "mode", "locked", "temp"}

// online makes p dial in, waits until its session is online and every
// published row's first value is on the bus, and returns the relay.
// (Waiting for the first values also orders the test's writes after the
// server's first reads of the monitored nodes: gopcua's server does not
// synchronize the two.)
func (e *env) online(p *plant) *rctest.Conn {
	e.t.Helper()
	relay := e.dial(p)
	e.Await(p.Hello().ServerURI, bridge.Online)
	e.data.Await(e.t, 10*time.Second, "first values", func(msgs []e2e.Msg) bool {
		for _, name := range publishedRows {
			if !slices.ContainsFunc(msgs, func(m e2e.Msg) bool { return m.Route == e.route(prefix, "s1", name) }) {
				return false
			}
		}
		return true
	})
	return relay
}

// command sends a command and returns the reply.
func (e *env) command(route, payload string) e2e.Reply {
	e.t.Helper()
	return e.client.Command(e.t, route, payload)
}

// presences decodes the presence messages of one status route.
func presences(t testing.TB, msgs []e2e.Msg, route string) []bridge.Presence {
	t.Helper()
	var out []bridge.Presence
	for _, m := range msgs {
		if m.Route != route {
			continue
		}
		var p bridge.Presence
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("presence %s: %v", m.Payload, err)
		}
		out = append(out, p)
	}
	return out
}

// states lists the presence states.
func states(ps []bridge.Presence) []bridge.PresenceState {
	out := make([]bridge.PresenceState, len(ps))
	for i, p := range ps {
		out[i] = p.State
	}
	return out
}
