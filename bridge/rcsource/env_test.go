package rcsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/natsbus"
	"github.com/rcbridge/rcbridge/bridge/rcsource"
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

// natsServer starts an embedded nats-server on a free loopback port, with
// JetStream when js is set; it stops at test cleanup.
type natsServer struct {
	t    testing.TB
	opts *server.Options
	mu   sync.Mutex
	srv  *server.Server
}

func startNATS(t testing.TB, js bool) *natsServer {
	t.Helper()
	n := &natsServer{t: t, opts: &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: js}}
	if js {
		n.opts.StoreDir = t.TempDir()
	}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	for try := 0; ; try++ {
		srv, err := server.NewServer(n.opts)
		if err != nil {
			n.t.Fatalf("nats-server: %v", err)
		}
		go srv.Start()
		if srv.ReadyForConnections(10 * time.Second) {
			n.mu.Lock()
			n.srv = srv
			n.opts.Port = srv.Addr().(*net.TCPAddr).Port
			n.mu.Unlock()
			return
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		if try == 20 {
			n.t.Fatalf("nats-server did not start on port %d", n.opts.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *natsServer) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// restart stops the server and starts it again on the same port with the
// same store.
func (n *natsServer) restart(down time.Duration) {
	n.stop()
	time.Sleep(down)
	n.start()
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// dial connects a plain NATS client that reconnects forever.
func (n *natsServer) dial(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.url(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
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
	p.temp = srv.AddVariable("Temp", 20.5, false)           // mapped read-only
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

// env is a bridge wired like the daemon wires it: an rc.Listener with a
// Broker, one rc.Factory, rcsource, natsbus on an embedded NATS server.
type env struct {
	t      *testing.T
	ln     *rc.Listener
	nats   *natsServer
	bus    *natsbus.Bus
	nc     *nats.Conn
	table  *mapping.Table
	bridge *bridge.Bridge
	status *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

type envConfig struct {
	servers   []string // ServerUris; default testServerURI
	rows      []mapping.Row
	jetstream bool
	tune      func(*bridge.Config)
}

func newEnv(t *testing.T, ec envConfig) *env {
	t.Helper()
	if len(ec.servers) == 0 {
		ec.servers = []string{testServerURI}
	}
	if ec.rows == nil {
		ec.rows = testRows()
	}
	e := &env{t: t, done: make(chan struct{})}
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

	e.nats = startNATS(t, ec.jetstream)
	opts := natsbus.Options{URLs: []string{e.nats.url()}, Logger: log, ReconnectWait: 20 * time.Millisecond}
	if ec.jetstream {
		opts.JetStream = &natsbus.JetStreamOptions{Stream: "RCB", Subjects: []string{prefix + ".>"}, Memory: false}
	}
	e.bus, err = natsbus.New(ctxTimeout(t, 10*time.Second), opts)
	if err != nil {
		t.Fatal(err)
	}
	e.nc = e.nats.dial(t)
	e.status = record(t, e.nc, prefix+".status.>")

	servers := make([]mapping.Server, len(ec.servers))
	for i, u := range ec.servers {
		servers[i] = mapping.Server{URI: u, Key: fmt.Sprintf("s%d", i+1)}
	}
	e.table, err = mapping.New(mapping.Config{Syntax: mapping.NATS, Prefix: prefix, Servers: servers, Rows: ec.rows})
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

// request sends a NATS request and returns the decoded reply.
func (e *env) request(subject, payload string) reply {
	e.t.Helper()
	msg, err := e.nc.Request(subject, []byte(payload), 10*time.Second)
	if err != nil {
		e.t.Fatalf("request %s %s: %v", subject, payload, err)
	}
	return decodeReply(e.t, msg.Data)
}

// reply is a command reply as clients see it.
type reply struct {
	ID     string `json:"id"`
	OK     bool   `json:"ok"`
	Status struct {
		Code uint32 `json:"code"`
		Name string `json:"name"`
	} `json:"status"`
	Error   *string           `json:"error"`
	Outputs []json.RawMessage `json:"outputs"`
	raw     string
}

func decodeReply(t testing.TB, b []byte) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %s: %v", b, err)
	}
	r.raw = string(b)
	return r
}

// recorder collects messages of a subscription.
type recorder struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	more chan struct{}
}

func record(t testing.TB, nc *nats.Conn, subject string) *recorder {
	t.Helper()
	r := &recorder{more: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
		select {
		case r.more <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

func (r *recorder) snapshot() []*nats.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*nats.Msg(nil), r.msgs...)
}

// await waits until cond holds for the recorded messages.
func (r *recorder) await(t testing.TB, d time.Duration, what string, cond func([]*nats.Msg) bool) []*nats.Msg {
	t.Helper()
	deadline := time.After(d)
	for {
		msgs := r.snapshot()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("%s: not within %v; got %d messages", what, d, len(msgs))
			return nil
		}
	}
}

// presences decodes the presence messages of one status subject.
func presences(t testing.TB, msgs []*nats.Msg, subject string) []bridge.Presence {
	t.Helper()
	var out []bridge.Presence
	for _, m := range msgs {
		if m.Subject != subject {
			continue
		}
		var p bridge.Presence
		if err := json.Unmarshal(m.Data, &p); err != nil {
			t.Fatalf("presence %s: %v", m.Data, err)
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
