package bustest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

// Run runs the conformance suite against the adapter behind h.
func Run(t *testing.T, h Harness) {
	t.Run("PublishReceive", func(t *testing.T) { testPublishReceive(t, h) })
	t.Run("PerRouteOrder", func(t *testing.T) { testPerRouteOrder(t, h) })
	t.Run("InvalidMessages", func(t *testing.T) { testInvalidMessages(t, h) })
	t.Run("CommandRoundTrip", func(t *testing.T) { testCommandRoundTrip(t, h) })
	t.Run("CommandFilters", func(t *testing.T) { testCommandFilters(t, h) })
	t.Run("SlowCommandHandler", func(t *testing.T) { testSlowCommandHandler(t, h) })
	t.Run("SlowConsumer", func(t *testing.T) { testSlowConsumer(t, h) })
	t.Run("Presence", func(t *testing.T) { testPresence(t, h) })
	t.Run("ReadyFollowsConnection", func(t *testing.T) { testReady(t, h) })
	t.Run("BrokerRestartDuringStream", func(t *testing.T) { testBrokerRestart(t, h) })
	t.Run("CommandsAfterRestart", func(t *testing.T) { testCommandsAfterRestart(t, h) })
	t.Run("CloseWhilePublishing", func(t *testing.T) { testCloseWhilePublishing(t, h) })
	t.Run("CloseWhileDisconnected", func(t *testing.T) { testCloseWhileDisconnected(t, h) })
}

// prefix returns a data route prefix unique to the running test.
func (h *Harness) prefix(t *testing.T) string { return h.prefixUnder(t, "bt") }

// cmdPrefix returns a command route prefix unique to the running test. It
// lies outside "bt" so that a JetStream stream capturing the data routes
// does not answer commands with PubAcks.
func (h *Harness) cmdPrefix(t *testing.T) string { return h.prefixUnder(t, "btc") }

func (h *Harness) prefixUnder(t *testing.T, root string) string {
	name := []byte(t.Name())
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			name[i] = '_'
		}
	}
	return h.route(root, string(name), strconv.FormatInt(time.Now().UnixNano()%1e12, 36))
}

// confirms counts confirm calls per batch so that "exactly once" can be
// checked.
type confirms struct {
	mu       sync.Mutex
	calls    map[int]int
	errs     []error
	accepted atomic.Int64
	ok       atomic.Int64 // messages confirmed with nil
	notify   chan struct{}
}

func newConfirms() *confirms {
	return &confirms{calls: make(map[int]int), notify: make(chan struct{}, 1)}
}

// publish publishes batch number id and records its confirmation.
func (c *confirms) publish(ctx context.Context, bus bridge.Publisher, id int, batch []bridge.Message) error {
	n := int64(len(batch))
	err := bus.Publish(ctx, batch, func(err error) {
		c.mu.Lock()
		c.calls[id]++
		if err != nil {
			c.errs = append(c.errs, err)
		}
		c.mu.Unlock()
		if err == nil {
			c.ok.Add(n)
		}
		select {
		case c.notify <- struct{}{}:
		default:
		}
	})
	if err == nil {
		c.accepted.Add(1)
	}
	return err
}

// await waits until every accepted batch had its confirm call.
func (c *confirms) await(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		n := len(c.calls)
		c.mu.Unlock()
		if int64(n) >= c.accepted.Load() {
			return
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			t.Fatalf("%d of %d accepted batches confirmed within %s", n, c.accepted.Load(), within)
		}
	}
}

// check fails unless every accepted batch was confirmed exactly once, and
// returns the errors batches ended with.
func (c *confirms) check(t *testing.T) []error {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range c.calls {
		if n != 1 {
			t.Errorf("batch %d: confirm called %d times, want exactly once", id, n)
		}
	}
	if int64(len(c.calls)) != c.accepted.Load() {
		t.Errorf("%d batches accepted, %d confirmed", c.accepted.Load(), len(c.calls))
	}
	return append([]error(nil), c.errs...)
}

// msg builds a suite data message whose payload is its sequence number.
func (h *Harness) msg(route string, seq int) bridge.Message {
	return bridge.Message{
		Route:   route,
		Payload: []byte(strconv.Itoa(seq)),
		ID:      bridge.MsgID{Server: route, Subscription: 1, Sequence: uint32(seq), Index: 0},
		QoS:     h.QoS,
	}
}

// seqs returns the sequence numbers received per route.
func seqs(t *testing.T, got []Received) map[string][]int {
	t.Helper()
	out := make(map[string][]int)
	for _, r := range got {
		n, err := strconv.Atoi(string(r.Payload))
		if err != nil {
			t.Fatalf("route %q: payload %q is not a suite message", r.Route, r.Payload)
		}
		out[r.Route] = append(out[r.Route], n)
	}
	return out
}

func closeBus(t *testing.T, bus bridge.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := bus.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func testPublishReceive(t *testing.T, h Harness) {
	var cnt counters
	p := h.prefix(t)
	rec := h.Watch(t, p)
	bus := h.Open(t, Config{Metrics: cnt.metrics()})
	routes := []string{h.route(p, "a"), h.route(p, "b"), h.route(p, "c")}
	var batch []bridge.Message
	for i := range 30 {
		batch = append(batch, h.msg(routes[i%3], i))
	}
	c := newConfirms()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.publish(ctx, bus, 0, batch); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	c.await(t, 20*time.Second)
	got, ok := rec.Await(ctx, func(r []Received) bool { return len(r) >= 30 })
	if !ok {
		t.Fatalf("received %d of 30 messages", len(got))
	}
	per := seqs(t, got)
	for k, r := range routes {
		want := []int{}
		for i := k; i < 30; i += 3 {
			want = append(want, i)
		}
		if fmt.Sprint(per[r]) != fmt.Sprint(want) {
			t.Errorf("route %q: got %v, want %v", r, per[r], want)
		}
	}
	closeBus(t, bus)
	if errs := c.check(t); len(errs) > 0 {
		t.Errorf("batch failed: %v", errs)
	}
	if got := cnt.confirmed.Load(); got != 30 {
		t.Errorf("Confirmed counter = %d, want 30", got)
	}
	if got := cnt.published.Load(); got < 30 {
		t.Errorf("Published counter = %d, want ≥ 30", got)
	}
}

// testPerRouteOrder runs several sessions at once, each pipelining many
// batches onto its own routes without waiting for confirmations.
func testPerRouteOrder(t *testing.T, h Harness) {
	const sessions, batches, per = 4, 150, 8
	p := h.prefix(t)
	rec := h.Watch(t, p)
	bus := h.Open(t, Config{MaxInFlight: 512})
	c := newConfirms()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			routes := []string{h.route(p, "s"+strconv.Itoa(s), "x"), h.route(p, "s"+strconv.Itoa(s), "y")}
			seq := 0
			for b := range batches {
				batch := make([]bridge.Message, per)
				for i := range batch {
					batch[i] = h.msg(routes[i%2], seq)
					seq++
				}
				if err := c.publish(ctx, bus, s*batches+b, batch); err != nil {
					t.Errorf("session %d: Publish: %v", s, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.await(t, 60*time.Second)
	total := sessions * batches * per
	got, ok := rec.Await(ctx, func(r []Received) bool { return len(r) >= total })
	if !ok {
		t.Fatalf("received %d of %d messages", len(got), total)
	}
	for route, s := range seqs(t, got) {
		if len(s) != total/sessions/2 {
			t.Errorf("route %q: %d messages, want %d", route, len(s), total/sessions/2)
		}
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] {
				t.Errorf("route %q: %d after %d: order broken", route, s[i], s[i-1])
				break
			}
		}
	}
	closeBus(t, bus)
	if errs := c.check(t); len(errs) > 0 {
		t.Errorf("batches failed: %v", errs)
	}
}

func testInvalidMessages(t *testing.T, h Harness) {
	p := h.prefix(t)
	rec := h.Watch(t, p)
	bus := h.Open(t, Config{})
	defer closeBus(t, bus)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good := h.msg(h.route(p, "good"), 1)
	cases := map[string][]bridge.Message{
		"empty batch": nil,
		"wildcards":   {good, h.msg(h.route(p, "bad*+#"), 2)},
		"empty route": {good, h.msg("", 2)},
		"qos 3":       {good, {Route: h.route(p, "q"), Payload: []byte("3"), QoS: 3}},
	}
	for name, batch := range cases {
		called := false
		err := bus.Publish(ctx, batch, func(error) { called = true })
		if !errors.Is(err, bridge.ErrInvalidMessage) {
			t.Errorf("%s: Publish error %v, want ErrInvalidMessage", name, err)
		}
		if called {
			t.Errorf("%s: confirm called for a refused batch", name)
		}
	}
	// Nothing of the refused batches may have been sent: a marker published
	// afterwards must be the first thing to arrive.
	c := newConfirms()
	if err := c.publish(ctx, bus, 0, []bridge.Message{h.msg(h.route(p, "marker"), 99)}); err != nil {
		t.Fatalf("Publish marker: %v", err)
	}
	got, ok := rec.Await(ctx, func(r []Received) bool { return len(r) >= 1 })
	if !ok {
		t.Fatal("marker not received")
	}
	if got[0].Route != h.route(p, "marker") {
		t.Errorf("first message received on %q: a refused batch was partly sent", got[0].Route)
	}
	c.await(t, 20*time.Second)
}
