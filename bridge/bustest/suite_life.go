package bustest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

// testSlowConsumer publishes while a subscriber of the same routes never
// reads: the publisher's confirmations must keep flowing.
func testSlowConsumer(t *testing.T, h Harness) {
	const batches, per = 200, 100
	p := h.prefix(t)
	h.Stall(t, p)
	rec := h.Watch(t, p)
	bus := h.Open(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newConfirms()
	route := h.route(p, "fast")
	pad := make([]byte, 100)
	for b := range batches {
		batch := make([]bridge.Message, per)
		for i := range batch {
			m := h.msg(route, b*per+i)
			m.Payload = append(m.Payload, pad...)
			batch[i] = m
		}
		if err := c.publish(ctx, bus, b, batch); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	c.await(t, 60*time.Second)
	if _, ok := rec.Await(ctx, func(r []Received) bool { return len(r) >= batches*per }); !ok {
		t.Errorf("a reading subscriber did not get every message next to a stalled one")
	}
	closeBus(t, bus)
	if errs := c.check(t); len(errs) > 0 {
		t.Errorf("batches failed: %v", errs[0])
	}
}

func decodePresence(t *testing.T, b []byte) bridge.Presence {
	t.Helper()
	var p bridge.Presence
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("presence payload %q: %v", b, err)
	}
	return p
}

// readPresence waits until the stored presence of p has state want.
func (h *Harness) awaitStoredPresence(t *testing.T, p bridge.Presence, want bridge.PresenceState) bridge.Presence {
	t.Helper()
	var got bridge.Presence
	eventually(t, 20*time.Second, "stored presence "+want.String()+" on "+p.Route, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		b := h.ReadPresence(ctx, t, p)
		if b == nil {
			return false
		}
		got = decodePresence(t, b)
		return got.State == want
	})
	return got
}

func testPresence(t *testing.T, h Harness) {
	p := h.prefix(t)
	rec := h.Watch(t, h.route(p, "status"))
	self := &bridge.Presence{Route: h.route(p, "status", "_bridge"), Key: "_bridge", Server: "rcbridge-test"}
	bus := h.Open(t, Config{Self: self})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	since := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	line := bridge.Presence{Route: h.route(p, "status", "line1"), Key: "line1", Server: "urn:plant:line1", State: bridge.Online, Since: since}
	if err := bus.PublishPresence(ctx, line); err != nil {
		t.Fatalf("PublishPresence: %v", err)
	}
	line.State = bridge.Resuming
	if err := bus.PublishPresence(ctx, line); err != nil {
		t.Fatalf("PublishPresence: %v", err)
	}
	bad := line
	bad.Route = h.route(p, "status", "x*+#")
	if err := bus.PublishPresence(ctx, bad); !errors.Is(err, bridge.ErrInvalidMessage) {
		t.Errorf("PublishPresence on %q: %v, want ErrInvalidMessage", bad.Route, err)
	}

	count := func(route string) func([]Received) bool {
		return func(r []Received) bool {
			n := 0
			for _, m := range r {
				if m.Route == route {
					n++
				}
			}
			return n >= 2
		}
	}
	if h.ReadPresence != nil {
		got := h.awaitStoredPresence(t, line, bridge.Resuming)
		if got.Server != line.Server || !got.Since.Equal(since) {
			t.Errorf("stored presence %+v, want server %q since %v", got, line.Server, since)
		}
		h.awaitStoredPresence(t, *self, bridge.Online)
	} else if got, ok := rec.Await(ctx, count(line.Route)); !ok {
		t.Fatalf("presence messages on %q: %d", line.Route, len(got))
	}

	// A broker that lost its state gets the latest presence again.
	before := len(rec.Snapshot())
	h.RestartBroker(t, nil)
	eventually(t, 20*time.Second, "ready after restart", func() bool { return bus.Ready() == nil })
	if h.ReadPresence != nil {
		h.awaitStoredPresence(t, line, bridge.Resuming)
	} else {
		// Without retention the watcher sees the repeat only if it was back
		// before the adapter; that race is the bus's, so it is only logged.
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		if _, ok := rec.Await(wctx, func(r []Received) bool {
			return count(line.Route)(r[min(before, len(r)):])
		}); !ok {
			t.Logf("the watcher did not see presence repeated after the restart (not retained on this bus)")
		}
		wcancel()
	}

	closeBus(t, bus)
	if h.ReadPresence != nil {
		h.awaitStoredPresence(t, *self, bridge.Offline)
	} else {
		_, ok := rec.Await(ctx, func(r []Received) bool {
			for _, m := range r {
				if m.Route == self.Route && decodePresence(t, m.Payload).State == bridge.Offline {
					return true
				}
			}
			return false
		})
		if !ok {
			t.Errorf("own status not announced offline on Close")
		}
	}
}

func testReady(t *testing.T, h Harness) {
	bus := h.Open(t, Config{})
	defer closeBus(t, bus)
	eventually(t, 10*time.Second, "ready", func() bool { return bus.Ready() == nil })
	h.RestartBroker(t, func() {
		eventually(t, 10*time.Second, "ErrNotConnected while the broker is down", func() bool {
			return errors.Is(bus.Ready(), bridge.ErrNotConnected)
		})
	})
	eventually(t, 20*time.Second, "ready after restart", func() bool { return bus.Ready() == nil })
}

// testBrokerRestart streams numbered values on several routes and restarts
// the broker in the middle.
func testBrokerRestart(t *testing.T, h Harness) {
	const routes, batches, per = 4, 300, 8
	var cnt counters
	p := h.prefix(t)
	rec := h.Watch(t, p)
	bus := h.Open(t, Config{MaxInFlight: 1024, Metrics: cnt.metrics()})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := newConfirms()
	names := make([]string, routes)
	for i := range names {
		names[i] = h.route(p, "r"+strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range batches {
			batch := make([]bridge.Message, per)
			for i := range batch {
				seq := b*per + i
				batch[i] = h.msg(names[seq%routes], seq)
			}
			if err := c.publish(ctx, bus, b, batch); err != nil {
				t.Errorf("Publish batch %d: %v", b, err)
				return
			}
			time.Sleep(time.Millisecond) // spread the stream over the restart
		}
	}()
	eventually(t, 30*time.Second, "a quarter of the stream confirmed", func() bool {
		return c.ok.Load() >= batches*per/4
	})
	h.RestartBroker(t, nil)
	wg.Wait()
	c.await(t, 60*time.Second)
	if errs := c.check(t); len(errs) > 0 {
		t.Fatalf("%d batches failed across the restart, first: %v", len(errs), errs[0])
	}
	total := batches * per
	last := func(r string) int { // the last value published on route r
		for s := total - 1; ; s-- {
			if names[s%routes] == r {
				return s
			}
		}
	}
	got, _ := rec.Await(ctx, func(r []Received) bool {
		per := make(map[string]int)
		for _, m := range r {
			if n, err := strconv.Atoi(string(m.Payload)); err == nil && n == last(m.Route) {
				per[m.Route]++
			}
		}
		return len(per) == routes
	})
	bySeq := seqs(t, got)
	missing := 0
	for _, r := range names {
		s := bySeq[r]
		if len(s) == 0 || s[len(s)-1] != last(r) {
			t.Errorf("route %q: last value received %v, want %d: an older value overtook a newer one", r, tail(s), last(r))
		}
		seen := make(map[int]bool, len(s))
		for _, v := range s {
			seen[v] = true
		}
		for v := 0; v < total; v++ {
			if names[v%routes] == r && !seen[v] {
				missing++
			}
		}
		if h.OrderedRestart {
			firstOrder(t, r, s)
		}
		if h.LosslessRestart {
			lastOrder(t, r, s)
		}
	}
	if h.LosslessRestart && missing > 0 {
		t.Errorf("%d of %d values missing after the broker restart", missing, total)
	}
	t.Logf("broker restart: %d of %d values missing at the watcher, %d re-sent by the adapter, %d reconnects",
		missing, total, cnt.retried.Load(), cnt.reconnects.Load())
	if cnt.reconnects.Load() == 0 {
		t.Errorf("Reconnects counter stayed 0 across a broker restart")
	}
	closeBus(t, bus)
}

// firstOrder checks that the first arrival of each value is in increasing
// order: re-sent copies may repeat values, but no value arrives for the
// first time after a newer one.
func firstOrder(t *testing.T, route string, s []int) {
	t.Helper()
	seen := make(map[int]bool, len(s))
	prev := -1
	for _, v := range s {
		if seen[v] {
			continue
		}
		seen[v] = true
		if v < prev {
			t.Errorf("route %q: %d arrived for the first time after %d (arrivals around it: %v)", route, v, prev, around(s, v))
			return
		}
		prev = v
	}
}

// lastOrder checks that the last arrival of each value is in increasing
// order: whatever arrived early was repeated, so a consumer that keeps the
// latest message of a route ends with the newest value.
func lastOrder(t *testing.T, route string, s []int) {
	t.Helper()
	seen := make(map[int]bool, len(s))
	next, at := -1<<62, -1 // the value whose last copy came after s[i], and where
	for i := len(s) - 1; i >= 0; i-- {
		v := s[i]
		if seen[v] {
			continue
		}
		seen[v] = true
		if at >= 0 && v > next {
			t.Errorf("route %q: the last copy of %d arrived before the last copy of the older %d (arrivals around the latter: %v)",
				route, v, next, s[max(0, at-8):min(len(s), at+8)])
			return
		}
		next, at = v, i
	}
}

func tail(s []int) []int { return s[max(0, len(s)-5):] }

// around returns the arrivals near the first arrival of v.
func around(s []int, v int) []int {
	for i, x := range s {
		if x == v {
			return s[max(0, i-8):min(len(s), i+8)]
		}
	}
	return nil
}

func testCloseWhilePublishing(t *testing.T, h Harness) {
	const sessions = 4
	p := h.prefix(t)
	bus := h.Open(t, Config{MaxInFlight: 256})
	c := newConfirms()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ends []error
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			route := h.route(p, "s"+strconv.Itoa(s))
			for b := 0; ; b++ {
				batch := make([]bridge.Message, 10)
				for i := range batch {
					batch[i] = h.msg(route, b*10+i)
				}
				if err := c.publish(ctx, bus, s*1_000_000+b, batch); err != nil {
					mu.Lock()
					ends = append(ends, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	eventually(t, 20*time.Second, "some batches confirmed", func() bool { return c.ok.Load() >= 500 })
	cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
	defer ccancel()
	if err := bus.Close(cctx); err != nil {
		t.Errorf("Close while publishing: %v", err)
	}
	wg.Wait()
	for _, err := range ends {
		if !errors.Is(err, bridge.ErrClosed) {
			t.Errorf("Publish ended with %v, want ErrClosed", err)
		}
	}
	c.await(t, time.Second)
	for _, err := range c.check(t) {
		if !errors.Is(err, bridge.ErrClosed) {
			t.Errorf("batch ended with %v, want nil or ErrClosed", err)
		}
	}
	if err := bus.Publish(ctx, []bridge.Message{h.msg(h.route(p, "late"), 1)}, func(error) {
		t.Error("confirm called for a batch refused after Close")
	}); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := bus.Ready(); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Ready after Close: %v, want ErrClosed", err)
	}
	if _, err := bus.Subscribe(ctx, []string{h.route(h.cmdPrefix(t), "cmd")}, newReplies(t).echo()); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := bus.Close(cctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// testCloseWhileDisconnected closes with unconfirmable batches: Close gives
// up at its deadline and every batch ends with ErrClosed.
func testCloseWhileDisconnected(t *testing.T, h Harness) {
	p := h.prefix(t)
	bus := h.Open(t, Config{})
	c := newConfirms()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.RestartBroker(t, func() {
		eventually(t, 10*time.Second, "disconnected", func() bool { return bus.Ready() != nil })
		if err := c.publish(ctx, bus, 0, []bridge.Message{h.msg(h.route(p, "x"), 1)}); err != nil {
			t.Fatalf("Publish while disconnected: %v (want it accepted and held)", err)
		}
		cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer ccancel()
		if err := bus.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close while disconnected: %v, want DeadlineExceeded", err)
		}
	})
	c.await(t, time.Second)
	errs := c.check(t)
	if len(errs) != 1 || !errors.Is(errs[0], bridge.ErrClosed) {
		t.Errorf("held batch ended with %v, want ErrClosed", errs)
	}
}
