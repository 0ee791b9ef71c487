//go:build integration

package integration

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/mqttbus/mqtttest"
	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
)

// TestBridgeNodeUAData: every variable of node-opcua's Types folder, each
// of another built-in type, arrives on its route with its type and value.
func TestBridgeNodeUAData(t *testing.T) {
	for _, bb := range bridgeBuses() {
		t.Run(bb.name, func(t *testing.T) {
			bus, client := bb.open(t)
			all := []string{nodeua.DefaultApplicationURI}
			vars := nodeua.TypeVariables(0) // the names; the values come below
			rows := make([]mapping.Row, len(vars))
			for i, v := range vars {
				rows[i] = mapping.Row{Servers: all, Node: nodeRef(t, "nsu="+nodeua.DefaultNamespaceURI+";s="+v.Name), Name: v.BrowseName,
					Settings: mapping.Settings{QoS: mapping.AtLeastOnce}}
			}
			watch := client.Watch(t, e2e.Route(client, bridgePrefix, "line1", wildcard(client)))
			b := e2e.StartBridge(t, e2e.BridgeConfig{
				Servers: []mapping.Server{{URI: nodeua.DefaultApplicationURI, Key: "line1"}},
				Syntax:  bb.syntax, Prefix: bridgePrefix, Rows: rows, Bus: bus,
			})
			srv := nodeua.Start(t, nodeua.Config{Hostname: "plc.invalid",
				ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{"opc.tcp://" + b.Addr()}}})
			// The ExpandedNodeId value carries the namespace index.
			vars = nodeua.TypeVariables(srv.NamespaceIndex())
			b.Await(nodeua.DefaultApplicationURI, bridge.Online)
			watch.Await(t, 20*time.Second, "every type", func(m []e2e.Msg) bool { return len(m) >= len(vars) })
			for _, v := range vars {
				route := e2e.Route(client, bridgePrefix, "line1", v.BrowseName)
				msgs := watch.On(route)
				if len(msgs) == 0 {
					t.Errorf("%s: nothing on %s", v.Name, route)
					continue
				}
				d := e2e.DecodeData(t, msgs[0].Payload)
				wantValue := string(mapping.AppendValue(nil, v.Value))
				if d.Server != nodeua.DefaultApplicationURI || d.Name != v.BrowseName || d.Type != mapping.TypeName(v.DataType) ||
					string(d.Value) != wantValue || d.Status.Code != 0 {
					t.Errorf("%s: %s\nwant type %s, value %s", v.Name, msgs[0].Payload, mapping.TypeName(v.DataType), wantValue)
				}
			}
		})
	}
}

// wildcard is the multi-level wildcard of the client's bus.
func wildcard(c e2e.Client) string {
	if c.Sep() == "." {
		return ">"
	}
	return "#"
}

// counterRows maps node-opcua's Counter so that every change is reported
// and queued while a connection is down.
func counterRows(t testing.TB) []mapping.Row {
	return []mapping.Row{{Servers: []string{nodeua.DefaultApplicationURI},
		Node: nodeRef(t, "nsu="+nodeua.DefaultNamespaceURI+";s="+nodeua.NodeCounter), Name: "counter",
		Settings: mapping.Settings{SamplingInterval: time.Millisecond, QueueSize: 10000, QoS: mapping.AtLeastOnce}}}
}

// counterValues decodes the counter values of data messages in order,
// without the first: that is the value the server read when it created the
// monitored item, and its sampling timer (every 1 ms) starts a moment later,
// so the counter may already have moved on by one by then (seen once with
// node-opcua 2.186.4). Every value from the first sample on must arrive.
func counterValues(t testing.TB, payloads [][]byte) []uint64 {
	t.Helper()
	if len(payloads) > 0 {
		payloads = payloads[1:]
	}
	out := make([]uint64, 0, len(payloads))
	for _, p := range payloads {
		d := e2e.DecodeData(t, p)
		if d.Type != "UInt32" {
			t.Fatalf("counter message %s", p)
		}
		v, err := strconv.ParseUint(string(d.Value), 10, 32)
		if err != nil {
			t.Fatalf("counter value %s: %v", d.Value, err)
		}
		out = append(out, v)
	}
	return out
}

// checkCounter reports values missing between the first and the last, and
// repeated ones when dups is false. It returns the number of repeats.
func checkCounter(t testing.TB, values []uint64, dups bool) int {
	t.Helper()
	if len(values) < 2 {
		t.Fatalf("%d counter values", len(values))
	}
	seen := make(map[uint64]int, len(values))
	lo, hi := values[0], values[0]
	for _, v := range values {
		seen[v]++
		lo, hi = min(lo, v), max(hi, v)
	}
	repeats := len(values) - len(seen)
	var missing []uint64
	for v := lo; v <= hi; v++ {
		if seen[v] == 0 {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d counter values missing between %d and %d: %v", len(missing), lo, hi, head(missing))
	}
	if repeats > 0 && !dups {
		t.Errorf("%d counter values repeated", repeats)
	}
	return repeats
}

func head(v []uint64) []uint64 { return v[:min(len(v), 20)] }

// TestBridgeNodeUACounterDrops: node-opcua's counter changes every 10 ms;
// its socket is killed 10 times at random moments; every value reaches the
// bus exactly once, in order.
func TestBridgeNodeUACounterDrops(t *testing.T) {
	for _, bb := range bridgeBuses() {
		t.Run(bb.name, func(t *testing.T) {
			bus, client := bb.open(t)
			route := e2e.Route(client, bridgePrefix, "line1", "counter")
			watch := client.Watch(t, route)
			var resumes, sessions atomicCounter
			b := e2e.StartBridge(t, e2e.BridgeConfig{
				Servers: []mapping.Server{{URI: nodeua.DefaultApplicationURI, Key: "line1"}},
				Syntax:  bb.syntax, Prefix: bridgePrefix, Rows: counterRows(t), Bus: bus,
				Tune: func(c *bridge.Config) {
					c.Servers = []bridge.ServerConfig{{URI: nodeua.DefaultApplicationURI, PublishingInterval: 50 * time.Millisecond}}
					c.Metrics.Server = func(string) bridge.ServerMetrics {
						return bridge.ServerMetrics{Resumes: resumes.add, Sessions: sessions.add}
					}
				},
			})
			srv := nodeua.Start(t, nodeua.Config{Hostname: "plc.invalid",
				ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{"opc.tcp://" + b.Addr()}}})
			b.Await(nodeua.DefaultApplicationURI, bridge.Online)
			watch.Await(t, 10*time.Second, "first values", func(m []e2e.Msg) bool { return len(m) > 10 })
			for i := range 10 {
				time.Sleep(time.Duration(50+rand.IntN(300)) * time.Millisecond)
				if _, err := srv.DropConnections(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "resume "+strconv.Itoa(i+1), 20*time.Second, func() bool { return resumes.n.Load() >= int64(i+1) })
			}
			before := len(watch.Snapshot())
			watch.Await(t, 10*time.Second, "values after the last resume", func(m []e2e.Msg) bool { return len(m) > before+20 })
			b.Stop()
			msgs := watch.Snapshot()
			payloads := make([][]byte, len(msgs))
			for i, m := range msgs {
				payloads[i] = m.Payload
			}
			values := counterValues(t, payloads)
			checkCounter(t, values, false)
			for i := 1; i < len(values); i++ {
				if values[i] < values[i-1] {
					t.Fatalf("value %d after %d: out of order", values[i], values[i-1])
				}
			}
			if s := sessions.n.Load(); s != 1 {
				t.Errorf("%d sessions, want 1 (every drop resumed)", s)
			}
			t.Logf("%d counter values (%d..%d) across 10 drops, none missing or repeated", len(values), values[0], values[len(values)-1])
		})
	}
}

// TestBridgeNodeUABrokerRestart: the broker restarts while the counter
// streams; with JetStream and with MQTT QoS 1 (mosquitto, persistent)
// no value is missing. JetStream also stores none twice.
func TestBridgeNodeUABrokerRestart(t *testing.T) {
	t.Run("jetstream", func(t *testing.T) {
		n := e2e.StartNATS(t, true)
		bus := e2e.OpenNATSBus(t, n.URL(), true, bridgePrefix)
		b := startCounterBridge(t, mapping.NATS, bus)
		time.Sleep(time.Second)
		n.Restart(500 * time.Millisecond)
		time.Sleep(2 * time.Second)
		b.Stop()
		payloads := streamMessages(t, n.URL(), bridgePrefix+".line1.counter")
		values := counterValues(t, payloads)
		checkCounter(t, values, false)
		t.Logf("%d counter values (%d..%d) across a NATS restart, none missing or stored twice", len(values), values[0], values[len(values)-1])
	})
	t.Run("mosquitto", func(t *testing.T) {
		m := startMosquitto(t)
		route := bridgePrefix + "/line1/counter"
		// A persistent session: mosquitto keeps what arrives for it while it
		// reconnects after the restart.
		var mu sync.Mutex
		var payloads [][]byte
		watcher := mqtttest.Dial(t, m.url(), "counter-watch", true)
		mqtttest.Wait(t, watcher.Subscribe(route, 1, func(_ mqtt.Client, msg mqtt.Message) {
			mu.Lock()
			payloads = append(payloads, append([]byte(nil), msg.Payload()...))
			mu.Unlock()
		}), "watch subscribe")
		bus := e2e.OpenMQTTBus(t, m.url())
		b := startCounterBridge(t, mapping.MQTT, bus)
		time.Sleep(time.Second)
		m.restart(func() { time.Sleep(500 * time.Millisecond) })
		time.Sleep(2 * time.Second)
		b.Stop()
		var values []uint64
		waitFor(t, "the watcher to catch up", 20*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			values = counterValues(t, payloads)
			return len(values) > 2 && len(missingValues(values)) == 0
		})
		repeats := checkCounter(t, values, true)
		t.Logf("%d counter values (%d..%d) across a mosquitto restart, none missing, %d delivered twice (QoS 1)", len(values), values[0], values[len(values)-1], repeats)
	})
}

// missingValues returns the values missing between the lowest and highest.
func missingValues(values []uint64) []uint64 {
	seen := make(map[uint64]bool, len(values))
	lo, hi := values[0], values[0]
	for _, v := range values {
		seen[v] = true
		lo, hi = min(lo, v), max(hi, v)
	}
	var out []uint64
	for v := lo; v <= hi; v++ {
		if !seen[v] {
			out = append(out, v)
		}
	}
	return out
}

// startCounterBridge starts a bridge on bus with the counter row and a
// node-opcua server dialing it, and waits for the first values.
func startCounterBridge(t *testing.T, syntax mapping.Syntax, bus bridge.Bus) *e2e.Bridge {
	t.Helper()
	var confirmed atomicCounter
	b := e2e.StartBridge(t, e2e.BridgeConfig{
		Servers: []mapping.Server{{URI: nodeua.DefaultApplicationURI, Key: "line1"}},
		Syntax:  syntax, Prefix: bridgePrefix, Rows: counterRows(t), Bus: bus,
		Tune: func(c *bridge.Config) {
			c.Servers = []bridge.ServerConfig{{URI: nodeua.DefaultApplicationURI, PublishingInterval: 50 * time.Millisecond}}
			c.Metrics.Server = func(string) bridge.ServerMetrics { return bridge.ServerMetrics{Confirmed: confirmed.add} }
		},
	})
	nodeua.Start(t, nodeua.Config{Hostname: "plc.invalid",
		ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{"opc.tcp://" + b.Addr()}}})
	b.Await(nodeua.DefaultApplicationURI, bridge.Online)
	waitFor(t, "first values", 10*time.Second, func() bool { return confirmed.n.Load() > 10 })
	return b
}

// streamMessages reads every message of subject from the test stream.
func streamMessages(t *testing.T, url, subject string) [][]byte {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "RCB", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := int(info.NumPending)
	var out [][]byte
	for len(out) < total {
		batch, err := cons.Fetch(min(total-len(out), 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m.Data())
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
