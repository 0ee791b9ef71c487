package bridge_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/natsbus"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
)

// These tests drive the bridge's data path with a scripted OPC UA side
// (scriptClient) against a real bus (natsbus on an embedded nats-server):
// they play the server's exact message sequences — a Republish of a
// message already on the bus, a gap, an unknown client handle — that a
// real server produces only by chance. The end-to-end tests in rcsource
// and integration use real servers.

const testNS = "urn:test:ns"

// scriptClient is a bridge.Client whose notifications the test sends.
type scriptClient struct {
	notes chan bridge.Notification
	done  chan struct{}

	mu     sync.Mutex
	specs  []bridge.SubscriptionSpec
	acks   []ack
	acked  chan struct{}
	closed bool
}

type ack struct{ sub, seq uint32 }

func newScriptClient() *scriptClient {
	return &scriptClient{notes: make(chan bridge.Notification), done: make(chan struct{}), acked: make(chan struct{}, 1)}
}

func (c *scriptClient) NamespaceArray(context.Context) ([]string, error) {
	return []string{"http://opcfoundation.org/UA/", testNS}, nil
}

func (c *scriptClient) TranslateBrowsePaths(_ context.Context, paths []*ua.BrowsePath) ([]*ua.BrowsePathResult, error) {
	out := make([]*ua.BrowsePathResult, len(paths))
	for i := range out {
		out[i] = &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
	}
	return out, nil
}

func (c *scriptClient) ReadVariableInfo(_ context.Context, nodes []*ua.NodeID) ([]bridge.VariableInfo, error) {
	out := make([]bridge.VariableInfo, len(nodes))
	for i := range out {
		out[i] = bridge.VariableInfo{DataType: ua.NewNumericNodeID(0, uint32(ua.TypeIDDouble)), ValueRank: -1,
			AccessLevel: ua.AccessLevelTypeCurrentWrite, UserAccessLevel: ua.AccessLevelTypeCurrentWrite}
	}
	return out, nil
}

func (c *scriptClient) Write(context.Context, *ua.NodeID, *ua.Variant) (ua.StatusCode, error) {
	return ua.StatusOK, nil
}

func (c *scriptClient) Call(context.Context, *ua.NodeID, *ua.NodeID, []*ua.Variant) (*ua.CallMethodResult, error) {
	return &ua.CallMethodResult{}, nil
}

func (c *scriptClient) Subscribe(_ context.Context, spec bridge.SubscriptionSpec) (uint32, []ua.StatusCode, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.specs = append(c.specs, spec)
	return uint32(len(c.specs)), make([]ua.StatusCode, len(spec.Items)), nil
}

func (c *scriptClient) Notifications() <-chan bridge.Notification { return c.notes }

// note returns n with its Ack recording the acknowledgement.
func (c *scriptClient) note(n bridge.Notification) bridge.Notification {
	if n.Lost.IsZero() {
		n.Ack = func() { c.acknowledge(n.Subscription, n.Sequence) }
	}
	return n
}

func (c *scriptClient) acknowledge(sub, seq uint32) {
	c.mu.Lock()
	c.acks = append(c.acks, ack{sub, seq})
	c.mu.Unlock()
	select {
	case c.acked <- struct{}{}:
	default:
	}
}

func (c *scriptClient) Done() <-chan struct{} { return c.done }
func (c *scriptClient) Err() error            { return nil }

func (c *scriptClient) Resume(ctx context.Context) (bridge.ResumeOutcome, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func (c *scriptClient) Close(context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// acksOf returns how often (sub, seq) was acknowledged.
func (c *scriptClient) acksOf(sub, seq uint32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, a := range c.acks {
		if a == (ack{sub, seq}) {
			n++
		}
	}
	return n
}

// awaitAck waits until (sub, seq) was acknowledged n times.
func (c *scriptClient) awaitAck(t testing.TB, sub, seq uint32, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for c.acksOf(sub, seq) < n {
		select {
		case <-c.acked:
		case <-deadline:
			t.Fatalf("(%d, %d) acknowledged %d times, want %d", sub, seq, c.acksOf(sub, seq), n)
		}
	}
}

// scriptSource hands out its clients one by one.
type scriptSource struct{ clients chan bridge.Client }

func (s scriptSource) Connect(ctx context.Context, _ string) (bridge.Client, error) {
	select {
	case c := <-s.clients:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// await waits until n messages arrived on route.
func await(t testing.TB, r *e2e.Recorder, route string, n int) []e2e.Msg {
	t.Helper()
	r.Await(t, 10*time.Second, route, func([]e2e.Msg) bool { return len(r.On(route)) >= n })
	return r.On(route)
}

func dv(v any) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}
}

// TestPipeline: every data change reaches its route; a NotificationMessage
// is acknowledged only once the bus confirmed it (not while the broker is
// down); a message sent again by Republish is acknowledged again but not
// published twice; unknown handles are dropped and counted; a gap becomes
// an event.
func TestPipeline(t *testing.T) {
	broker := e2e.StartNATS(t, false)
	log := e2e.Logger(t)
	bus, err := natsbus.New(context.Background(), natsbus.Options{URLs: []string{broker.URL()}, ReconnectWait: 20 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	got := e2e.DialNATS(t, broker.URL()).Watch(t, "p.>")

	ref := func(s string) mapping.NodeRef {
		r, err := mapping.ParseNodeRef("nsu=" + testNS + ";s=" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	table, err := mapping.New(mapping.Config{Syntax: mapping.NATS, Prefix: "p",
		Servers: []mapping.Server{{URI: "urn:s1", Key: "s1"}},
		Rows: []mapping.Row{
			{Servers: []string{"urn:s1"}, Node: ref("A"), Name: "a"},
			{Servers: []string{"urn:s1"}, Node: ref("B"), Name: "b", Settings: mapping.Settings{Payload: mapping.PayloadValue}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var dropped, duplicates, gaps atomic.Int64
	client := newScriptClient()
	clients := make(chan bridge.Client, 1)
	clients <- client
	br, err := bridge.New(bridge.Config{Table: table, Source: scriptSource{clients}, Publisher: bus, Presence: bus, Logger: log,
		Metrics: bridge.Metrics{Server: func(string) bridge.ServerMetrics {
			add := func(v *atomic.Int64) bridge.Counter { return func(n uint64) { v.Add(int64(n)) } }
			return bridge.ServerMetrics{Dropped: add(&dropped), Duplicates: add(&duplicates), Gaps: add(&gaps)}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = br.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		if err := bus.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	if err := br.AwaitState(actx, "urn:s1", bridge.Online); err != nil {
		t.Fatal(err)
	}

	client.mu.Lock()
	specs := slices.Clone(client.specs)
	client.mu.Unlock()
	if len(specs) != 1 || len(specs[0].Items) != 2 || specs[0].Items[0].Handle != 0 || specs[0].Items[1].Handle != 1 ||
		specs[0].Items[1].Node.String() != "ns=1;s=B" {
		t.Fatalf("subscriptions %+v: want one with handles 0 (A) and 1 (B, ns=1)", specs)
	}

	send := func(n bridge.Notification) {
		select {
		case client.notes <- client.note(n):
		case <-time.After(10 * time.Second):
			t.Fatal("the bridge does not read notifications")
		}
	}
	send(bridge.Notification{Subscription: 1, Sequence: 1, Changes: []bridge.DataChange{{Handle: 0, Value: dv(1.5)}, {Handle: 1, Value: dv(int32(7))}}})
	client.awaitAck(t, 1, 1, 1)
	a := await(t, got, "p.s1.a", 1)
	if doc := e2e.DecodeData(t, a[0].Payload); doc.Server != "urn:s1" || doc.Name != "a" || string(doc.Value) != "1.5" || doc.Type != "Double" {
		t.Fatalf("p.s1.a payload %s", a[0].Payload)
	}
	if b := await(t, got, "p.s1.b", 1); string(b[0].Payload) != "7" {
		t.Fatalf("p.s1.b payload %s, want 7", b[0].Payload)
	}

	send(bridge.Notification{Subscription: 1, Sequence: 2, Changes: []bridge.DataChange{{Handle: 0, Value: dv(2.5)}}})
	client.awaitAck(t, 1, 2, 1)
	await(t, got, "p.s1.a", 2)
	// Republish of a confirmed message: acknowledged again, not published.
	send(bridge.Notification{Subscription: 1, Sequence: 2, Republished: true, Changes: []bridge.DataChange{{Handle: 0, Value: dv(2.5)}}})
	client.awaitAck(t, 1, 2, 2)
	// Unknown client handle: dropped; the message is still acknowledged.
	send(bridge.Notification{Subscription: 1, Sequence: 3, Changes: []bridge.DataChange{{Handle: 9, Value: dv(3.5)}}})
	client.awaitAck(t, 1, 3, 1)
	// A gap is announced.
	send(bridge.Notification{Subscription: 1, Lost: bridge.Gap{From: 4, To: 5, Reason: "not available for republish"}})
	ev := await(t, got, "p.status.s1.events", 1)
	var e bridge.Event
	if err := json.Unmarshal(ev[0].Payload, &e); err != nil || e.Event != "gap" || e.Server != "urn:s1" || e.Subscription != 1 || e.From != 4 || e.To != 5 {
		t.Fatalf("gap event %s (%v)", ev[0].Payload, err)
	}
	send(bridge.Notification{Subscription: 1, Sequence: 6, Changes: []bridge.DataChange{{Handle: 0, Value: dv(6.5)}}})
	client.awaitAck(t, 1, 6, 1)
	if n := len(await(t, got, "p.s1.a", 3)); n != 3 {
		t.Fatalf("%d messages on p.s1.a, want 3 (no copy of the republished one)", n)
	}
	// A subscription the server recreated under the same id starts again
	// at 1: a fresh message, published.
	send(bridge.Notification{Subscription: 1, Sequence: 1, Changes: []bridge.DataChange{{Handle: 0, Value: dv(8.5)}}})
	client.awaitAck(t, 1, 1, 2)
	if a := await(t, got, "p.s1.a", 4); !strings.Contains(string(a[3].Payload), "8.5") {
		t.Fatalf("fourth message %s, want the value 8.5 of the restarted subscription", a[3].Payload)
	}
	if dropped.Load() != 1 || duplicates.Load() != 1 || gaps.Load() != 1 {
		t.Errorf("dropped %d, duplicates %d, gaps %d; want 1 each", dropped.Load(), duplicates.Load(), gaps.Load())
	}

	// Broker down: the message is held, not acknowledged, until the bus
	// confirmed it after the restart. (Core NATS delivers it only to
	// subscribers already back, so only the acknowledgement is checked.)
	broker.Stop()
	send(bridge.Notification{Subscription: 1, Sequence: 7, Changes: []bridge.DataChange{{Handle: 0, Value: dv(7.5)}}})
	time.Sleep(300 * time.Millisecond)
	if n := client.acksOf(1, 7); n != 0 {
		t.Fatalf("message acknowledged %d times while the broker was down", n)
	}
	broker.Start()
	client.awaitAck(t, 1, 7, 1)
}
