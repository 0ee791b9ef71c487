// Package bustest is the conformance suite every bus adapter passes: one
// Run against a Harness that connects the suite to the adapter and to a
// real broker. It checks the contracts declared in package bridge:
// publish and receive, per-route order, confirmation exactly once, command
// round trips, broker restarts during a stream, slow consumers, Close while
// publishing, presence.
package bustest

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

// Harness connects the suite to one adapter and its broker. Every function
// is required unless its doc says otherwise. Data and presence routes
// start with "bt", command routes with "btc" (a JetStream stream for the
// suite captures "bt.>" only).
type Harness struct {
	// Sep separates route levels: "." for NATS, "/" for MQTT.
	Sep string
	// Open returns a new adapter connected to the broker, configured with
	// c. The suite closes it; the harness may also register a cleanup.
	Open func(t *testing.T, c Config) bridge.Bus
	// Watch records every message the broker accepts under prefix (the
	// harness adds its wildcard). It keeps recording across RestartBroker
	// without missing a message the broker accepted when LosslessRestart
	// is set. It stops at test cleanup.
	Watch func(t *testing.T, prefix string) *Recorder
	// Stall subscribes to prefix with a consumer that never reads, until
	// test cleanup.
	Stall func(t *testing.T, prefix string)
	// Command sends payload as a command on route the way a bus client
	// would (NATS request, MQTT publish on the route) and returns its
	// reply. On MQTT the reply is the next message on `<route>/result`
	// that ends with "|" + payload: the suite's handlers echo the request,
	// as real results carry its correlation id.
	Command func(ctx context.Context, t *testing.T, route string, payload []byte) ([]byte, error)
	// Notify sends payload as a command on route without waiting for an
	// answer.
	Notify func(t *testing.T, route string, payload []byte)
	// RestartBroker stops the broker, calls whileDown (may be nil), and
	// starts it again on the same address with the same storage.
	RestartBroker func(t *testing.T, whileDown func())
	// ReadPresence reads the presence stored for p (MQTT retained message,
	// JetStream KV entry) with a fresh client and returns its payload, or
	// nil when there is none. Nil when the bus keeps no presence (core
	// NATS): the suite then checks a live subscriber.
	ReadPresence func(ctx context.Context, t *testing.T, p bridge.Presence) []byte
	// LosslessRestart says the bus loses nothing across RestartBroker
	// (JetStream; MQTT at QoS 1 with a broker-side Watch). The suite then
	// also checks that the last copy of every value arrives in publish
	// order, so the newest value of a route is the one that stays.
	LosslessRestart bool
	// OrderedRestart says that even the first copies keep publish order
	// across RestartBroker (JetStream). MQTT cannot promise it: paho may
	// put a message on the new connection before its re-send of older ones.
	OrderedRestart bool
	// DropsCountedAtOnce says the adapter counts a dropped command the
	// moment it drops it (MQTT: paho's receiving goroutine queues it or
	// drops it). When false (NATS: nats.go drops, the adapter counts at
	// its next delivery), the suite relies instead on the adapter's one
	// connection carrying commands and publish confirmations in order.
	DropsCountedAtOnce bool
	// QoS is the MQTT QoS of the suite's data messages (ignored by NATS).
	QoS bridge.QoS
}

// Config is what the suite asks of Open.
type Config struct {
	MaxInFlight  int               // 0: adapter default
	CommandQueue int               // 0: adapter default
	Metrics      bridge.BusMetrics // counters the suite inspects
	Self         *bridge.Presence  // the bridge's own status, if any
}

// Received is one message seen by a Watch.
type Received struct {
	Route   string
	Payload []byte
}

// Recorder collects messages for Watch implementations; safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex
	msgs   []Received
	notify chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{notify: make(chan struct{}, 1)} }

// Add records one message; payload is copied.
func (r *Recorder) Add(route string, payload []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, Received{Route: route, Payload: append([]byte(nil), payload...)})
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Snapshot returns the messages recorded so far.
func (r *Recorder) Snapshot() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.msgs...)
}

// Await waits until cond holds for the recorded messages or ctx ends, and
// returns the last snapshot and whether cond held. cond runs under the
// recorder's lock on its own slice: it must be quick and keep nothing.
func (r *Recorder) Await(ctx context.Context, cond func([]Received) bool) ([]Received, bool) {
	for {
		r.mu.Lock()
		ok := cond(r.msgs)
		r.mu.Unlock()
		if ok {
			return r.Snapshot(), true
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return r.Snapshot(), false
		}
	}
}

// counters are the metrics the suite hands to adapters.
type counters struct {
	published, confirmed, retried, failed, lost, reconnects, received, dropped atomic.Uint64
}

func (c *counters) metrics() bridge.BusMetrics {
	add := func(v *atomic.Uint64) bridge.Counter { return func(n uint64) { v.Add(n) } }
	return bridge.BusMetrics{
		Published: add(&c.published), Confirmed: add(&c.confirmed), Retried: add(&c.retried),
		Failed: add(&c.failed), Lost: add(&c.lost), Reconnects: add(&c.reconnects),
		CommandsReceived: add(&c.received), CommandsDropped: add(&c.dropped),
	}
}

// route joins levels with the harness separator.
func (h *Harness) route(levels ...string) string { return strings.Join(levels, h.Sep) }

// eventually polls cond until it holds or the deadline passes; it is a
// wait with a deadline, not a timing assertion.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
