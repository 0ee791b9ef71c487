package rcsource_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
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
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// TestCoreNATSRestart: a counter changes every 2 ms on a real OPC UA server
// (rctest); the embedded nats-server restarts mid-stream while the bridge
// publishes it with core NATS. The watcher is back on the new server before
// the bridge (a gate holds the bridge off), so what it misses is what the
// bus lost. Core NATS confirms a batch by a PING/PONG round trip and the
// adapter sends unconfirmed batches again after the reconnect: the values
// missing are at most the in-flight window and exactly the Lost count;
// values seen twice are at most the Retried count.
func TestCoreNATSRestart(t *testing.T) {
	const window = 512
	n := e2e.StartNATS(t, false)
	gate := e2e.NewGate(t, strings.TrimPrefix(n.URL(), "nats://"))
	var retried, lost, reconnects atomic.Uint64
	add := func(v *atomic.Uint64) bridge.Counter { return func(d uint64) { v.Add(d) } }
	bus, err := natsbus.New(e2e.WithTimeout(t, 10*time.Second), natsbus.Options{
		URLs: []string{"nats://" + gate.Addr()}, ReconnectWait: 20 * time.Millisecond, MaxInFlight: window, Logger: e2e.Logger(t),
		Metrics: bridge.BusMetrics{Retried: add(&retried), Lost: add(&lost), Reconnects: add(&reconnects)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close(e2e.WithTimeout(t, 10*time.Second)) })
	watcher := e2e.DialNATS(t, n.URL())
	route := prefix + ".s1.counter"
	rec := watcher.Watch(t, route)

	srv, err := rctest.NewServer(rctest.Options{ServerURI: testServerURI, NamespaceURI: testNS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var counter atomic.Uint32
	node := srv.AddDynamicVariable(nil, "Counter", func() *ua.DataValue {
		return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(counter.Load())}
	}, nil)
	ref, err := mapping.ParseNodeRef("nsu=" + testNS + ";s=Counter")
	if err != nil {
		t.Fatal(err)
	}
	tap := &tapBus{Bus: bus, route: route, published: make(map[uint64]bool)}
	b := e2e.StartBridge(t, e2e.BridgeConfig{
		Servers: []mapping.Server{{URI: testServerURI, Key: "s1"}}, Syntax: mapping.NATS, Prefix: prefix, Bus: tap,
		Rows: []mapping.Row{{Servers: []string{"*"}, Node: ref, Name: "counter", Settings: mapping.Settings{QueueSize: 1000}}},
		Tune: func(c *bridge.Config) {
			c.Servers = []bridge.ServerConfig{{URI: testServerURI, PublishingInterval: 20 * time.Millisecond}}
		},
	})
	conn, err := srv.Dial(e2e.WithTimeout(t, 10*time.Second), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	b.Await(testServerURI, bridge.Online)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				counter.Add(1)
				srv.Changed(node)
			}
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	rec.Await(t, 20*time.Second, "values before the restart", func(m []e2e.Msg) bool { return len(m) >= 60 })

	gate.Close()
	n.Restart(300 * time.Millisecond)
	waitWatcher(t, watcher)
	before := len(rec.Snapshot())
	gate.Open()
	rec.Await(t, 30*time.Second, "values after the restart", func(m []e2e.Msg) bool { return len(m) >= before+60 })
	stop()
	wg.Wait()
	last := strconv.FormatUint(uint64(counter.Load()), 10)
	rec.Await(t, 20*time.Second, "the last value", func(m []e2e.Msg) bool {
		return len(m) > 0 && string(e2e.DecodeData(t, m[len(m)-1].Payload).Value) == last
	})
	b.Stop()

	seen := make(map[uint64]int)
	for _, m := range rec.Snapshot() {
		seen[counterValue(t, m.Payload)]++
	}
	var missing []uint64
	dups := 0
	tap.mu.Lock()
	for v := range tap.published {
		if seen[v] == 0 {
			missing = append(missing, v)
		}
	}
	published := len(tap.published)
	tap.mu.Unlock()
	slices.Sort(missing)
	for _, n := range seen {
		dups += max(n-1, 0)
	}
	t.Logf("core NATS restart: %d values published, %d missing, %d seen twice; bridge counted %d lost, %d re-sent, %d reconnects",
		published, len(missing), dups, lost.Load(), retried.Load(), reconnects.Load())
	if reconnects.Load() == 0 {
		t.Fatal("the bridge did not reconnect: no restart happened")
	}
	if len(missing) > window {
		t.Errorf("%d values missing, more than the in-flight window of %d: %v", len(missing), window, missing[:min(len(missing), 20)])
	}
	if uint64(len(missing)) != lost.Load() {
		t.Errorf("%d values missing, %d counted lost: %v", len(missing), lost.Load(), missing[:min(len(missing), 20)])
	}
	if uint64(dups) > retried.Load() {
		t.Errorf("%d values seen twice, only %d re-sent", dups, retried.Load())
	}
}

// waitWatcher waits until the watcher reconnected and the server confirmed
// its subscriptions.
func waitWatcher(t *testing.T, c *e2e.NATSClient) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for c.NC.Stats().Reconnects == 0 || c.NC.FlushTimeout(time.Second) != nil {
		if time.Now().After(deadline) {
			t.Fatal("watcher not back after the restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tapBus records the counter values the bridge publishes: what the bus was
// given to carry.
type tapBus struct {
	bridge.Bus
	route     string
	mu        sync.Mutex
	published map[uint64]bool
}

func (b *tapBus) Publish(ctx context.Context, batch []bridge.Message, confirm bridge.ConfirmFunc) error {
	var vals []uint64
	for _, m := range batch {
		if m.Route == b.route {
			vals = append(vals, counterValueOf(m.Payload))
		}
	}
	err := b.Bus.Publish(ctx, batch, confirm)
	if err == nil {
		b.mu.Lock()
		for _, v := range vals {
			b.published[v] = true
		}
		b.mu.Unlock()
	}
	return err
}

// counterValueOf decodes the counter value of a data message; 1<<40 (no
// counter value) when it has none.
func counterValueOf(payload []byte) uint64 {
	var d struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(payload, &d) != nil {
		return 1 << 40
	}
	v, err := strconv.ParseUint(string(d.Value), 10, 32)
	if err != nil {
		return 1 << 40
	}
	return v
}

func counterValue(t *testing.T, payload []byte) uint64 {
	t.Helper()
	v := counterValueOf(payload)
	if v == 1<<40 {
		t.Fatalf("counter message %s", payload)
	}
	return v
}
