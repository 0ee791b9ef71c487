package rcsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"go.uber.org/goleak"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/mqttbus"
	"github.com/rcbridge/rcbridge/bridge/natsbus"
	"github.com/rcbridge/rcbridge/bridge/rcsource"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger writes warnings and errors into the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
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

// env is a bridge wired like the daemon wires it: an rc.Listener with a
// Broker, one rc.Factory, rcsource, and a real bus adapter on an embedded
// broker (nats-server, or mochi-mqtt).
type env struct {
	t      *testing.T
	kind   busKind
	ln     *rc.Listener
	nats   *e2e.NATS
	mochi  *e2e.Mochi
	bus    bridge.Bus
	client e2e.Client // a user of the bus
	table  *mapping.Table
	bridge *bridge.Bridge
	status *e2e.Recorder // the status routes
	cancel context.CancelFunc
	done   chan struct{}
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
	e := &env{t: t, kind: ec.bus, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	log := testLogger(t)

	allow, err := rc.NewAllowList(ec.servers...)
	if err != nil {
		t.Fatal(err)
	}
	e.ln, err = rc.Listen(ctx, "127.0.0.1:0", rc.ListenerConfig{Validator: allow, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := rc.NewBroker(e.ln, rc.BrokerConfig{HoldTime: 2 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	factory, err := rc.NewFactory(rc.ClientConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	src, err := rcsource.New(rcsource.Config{Sessions: broker, Factory: factory, Logger: log})
	if err != nil {
		t.Fatal(err)
	}

	syntax := mapping.NATS
	if ec.bus == busMQTT {
		syntax = mapping.MQTT
		e.mochi = e2e.StartMochi(t)
		e.bus, err = mqttbus.New(ctxTimeout(t, 10*time.Second), mqttbus.Options{Brokers: []string{e.mochi.URL()},
			ClientID: "bridge-" + t.Name(), MaxReconnectInterval: 200 * time.Millisecond, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		e.client = e2e.DialMQTT(t, e.mochi.URL())
		e.status = e.client.Watch(t, prefix+"/status/#")
	} else {
		e.nats = e2e.StartNATS(t, ec.bus == busJetStream)
		opts := natsbus.Options{URLs: []string{e.nats.URL()}, Logger: log, ReconnectWait: 20 * time.Millisecond}
		if ec.bus == busJetStream {
			opts.JetStream = &natsbus.JetStreamOptions{Stream: "RCB", Subjects: []string{prefix + ".>"}}
		}
		e.bus, err = natsbus.New(ctxTimeout(t, 10*time.Second), opts)
		if err != nil {
			t.Fatal(err)
		}
		e.client = e2e.DialNATS(t, e.nats.URL())
		e.status = e.client.Watch(t, prefix+".status.>")
	}

	servers := make([]mapping.Server, len(ec.servers))
	for i, u := range ec.servers {
		servers[i] = mapping.Server{URI: u, Key: fmt.Sprintf("s%d", i+1)}
	}
	e.table, err = mapping.New(mapping.Config{Syntax: syntax, Prefix: prefix, Servers: servers, Rows: ec.rows})
	if err != nil {
		t.Fatal(err)
	}
	cfg := bridge.Config{
		Table: e.table, Source: src, Publisher: e.bus, Presence: e.bus, Commands: e.bus,
		ResumeTimeout: 3 * time.Second, CommandTimeout: 5 * time.Second, MinRetryDelay: 20 * time.Millisecond,
		MaxRetryDelay: 200 * time.Millisecond, Logger: log,
	}
	if ec.tune != nil {
		ec.tune(&cfg)
	}
	e.bridge, err = bridge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = broker.Run(ctx) })
	wg.Go(func() {
		defer close(e.done)
		if err := e.bridge.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		e.stop()
		e.ln.Close()
		wg.Wait()
		if err := e.bus.Close(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Errorf("bus Close: %v", err)
		}
	})
	select {
	case <-e.bridge.CommandsReady():
	case <-time.After(10 * time.Second):
		t.Fatal("command routes not subscribed within 10 s")
	}
	return e
}

// stop ends the bridge and waits for Run to return.
func (e *env) stop() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(20 * time.Second):
		e.t.Fatal("bridge did not stop within 20 s")
	}
}

// route joins route levels with the bus's separator.
func (e *env) route(parts ...string) string { return e2e.Route(e.client, parts...) }

// dial makes p reverse-connect to the bridge and returns the relay.
func (e *env) dial(p *plant) *rctest.Conn {
	e.t.Helper()
	c, err := p.Dial(ctxTimeout(e.t, 10*time.Second), e.ln.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// await waits until the server is in state st.
func (e *env) await(uri string, st bridge.PresenceState) {
	e.t.Helper()
	if err := e.bridge.AwaitState(ctxTimeout(e.t, 15*time.Second), uri, st); err != nil {
		e.t.Fatal(err)
	}
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
