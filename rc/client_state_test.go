package rc_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// eventLog records the client events a callback receives.
type eventLog struct {
	mu      sync.Mutex
	evs     []rc.ClientEvent
	changed chan struct{} // closed and replaced at every event
	block   chan struct{} // when not nil, the callback waits for it
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) record(ev rc.ClientEvent) {
	l.mu.Lock()
	block := l.block
	l.mu.Unlock()
	if block != nil {
		<-block
	}
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *eventLog) snapshot() ([]rc.ClientEvent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs), l.changed
}

// await waits until the events recorded so far end with kinds, after
// skipping the first from, and returns those events.
func (l *eventLog) await(t *testing.T, from int, kinds ...rc.ClientEventKind) []rc.ClientEvent {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		evs, changed := l.snapshot()
		if len(evs) >= from+len(kinds) {
			got := evs[from : from+len(kinds)]
			if !slices.Equal(kindsOf(got), kinds) {
				t.Fatalf("events %v, want %v after the first %d", kindsOf(evs), kinds, from)
			}
			return got
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("events %v, want %v after the first %d", kindsOf(evs), kinds, from)
		}
	}
}

func kindsOf(evs []rc.ClientEvent) []rc.ClientEventKind {
	out := make([]rc.ClientEventKind, len(evs))
	for i, ev := range evs {
		out[i] = ev.Kind
	}
	return out
}

// checkStates checks each event's State and Client.
func checkStates(t *testing.T, c *rc.Client, evs []rc.ClientEvent, states ...rc.ClientState) {
	t.Helper()
	for i, ev := range evs {
		if ev.Client != c || ev.Time.IsZero() {
			t.Errorf("event %d (%s): client %p at %v, want %p and a time", i, ev.Kind, ev.Client, ev.Time, c)
		}
		if i < len(states) && ev.State != states[i] {
			t.Errorf("event %d (%s): state %s, want %s", i, ev.Kind, ev.State, states[i])
		}
	}
}

// subscribeTo subscribes c to node with a short keep-alive budget and
// consumes and acks its notifications until the client closes, at the end
// of owner's test at the latest.
func subscribeTo(t *testing.T, owner testing.TB, c *rc.Client, node *ua.NodeID) *rc.Subscription {
	t.Helper()
	sub, err := c.Subscribe(ctxTimeout(t, 5*time.Second), rc.SubscriptionParams{PublishingInterval: 50 * time.Millisecond, KeepAliveCount: 4})
	if err != nil {
		t.Fatal(err)
	}
	items, err := sub.Monitor(ctxTimeout(t, 5*time.Second), rc.MonitorRequest{NodeID: node})
	if err != nil || items[0].Status != ua.StatusOK {
		t.Fatalf("Monitor = %v, %v", items, err)
	}
	notes := c.Notifications()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range notes {
			n.Ack()
		}
	}()
	owner.Cleanup(func() {
		_ = c.Close(ctxTimeout(owner, 5*time.Second)) // ends Notifications
		<-done
	})
	return sub
}

// TestClientStates follows a client through its states: active after
// Build, disconnected when its socket drops, resuming and resumed on the
// next connection, stalled when the server stops answering Publish, a
// failed resume, and closed.
func TestClientStates(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	node := srv.AddVariable("V", int32(1), true)
	events := newEventLog()
	f := newFactory(t, rc.ClientConfig{OnClientEvent: events.record})
	ln := listen(t)
	s, relay := reverseConnect(t, srv, ln)
	c, err := f.Build(ctxTimeout(t, 10*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close(ctxTimeout(t, 5*time.Second))
		}
	})
	if st := c.State(); st != rc.StateActive {
		t.Fatalf("State after Build = %s", st)
	}
	evs := events.await(t, 0, rc.ClientActive)
	checkStates(t, c, evs, rc.StateActive)
	n := 1

	parent := t
	resume := func(t *testing.T) *rctest.Conn {
		t.Helper()
		s, r := reverseConnect(t, srv, ln)
		parent.Cleanup(r.Close) // the relay outlives the subtest
		outcome, err := c.Resume(ctxTimeout(t, 10*time.Second), s)
		if err != nil || outcome != rc.SessionResumed {
			t.Fatalf("Resume = %v, %v", outcome, err)
		}
		return r
	}

	t.Run("Drop", func(t *testing.T) {
		relay.Close()
		waitDone(t, c)
		// Reported before Done closed.
		if st := c.State(); st != rc.StateDisconnected {
			t.Fatalf("State after the drop = %s", st)
		}
		relay = resume(t)
		evs := events.await(t, n, rc.ClientDisconnected, rc.ClientResuming, rc.ClientResumed)
		n += 3
		checkStates(t, c, evs, rc.StateDisconnected, rc.StateResuming, rc.StateActive)
		if !errors.Is(evs[0].Err, rc.ErrConnectionLost) || evs[2].Outcome != rc.SessionResumed {
			t.Errorf("disconnected err %v, resumed outcome %v", evs[0].Err, evs[2].Outcome)
		}
	})

	t.Run("Stall", func(t *testing.T) {
		subscribeTo(t, parent, c, node)
		relay.Freeze() // the server looks alive but answers nothing
		waitDoneWithin(t, c, 10*time.Second)
		evs := events.await(t, n, rc.PublishStalled)
		n++
		checkStates(t, c, evs, rc.StateDisconnected)
		if !errors.Is(evs[0].Err, rc.ErrStalled) || !errors.Is(c.Err(), rc.ErrStalled) {
			t.Errorf("stalled err %v, client err %v; want ErrStalled", evs[0].Err, c.Err())
		}
		relay = resume(t)
		events.await(t, n, rc.ClientResuming, rc.ClientResumed)
		n += 2
	})

	t.Run("ResumeFailed", func(t *testing.T) {
		// A connection whose server hangs up at once.
		conn, err := rctest.DialHello(ctxTimeout(t, 5*time.Second), ln.Addr().String(), srv.Hello())
		if err != nil {
			t.Fatal(err)
		}
		s, err := acceptSession(ctxTimeout(t, 5*time.Second), ln)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if _, err := c.Resume(ctxTimeout(t, 5*time.Second), s); err == nil {
			t.Fatal("Resume on a closed connection succeeded")
		}
		evs := events.await(t, n, rc.ClientResuming, rc.ClientResumeFailed)
		n += 2
		// The previous connection is still up.
		checkStates(t, c, evs, rc.StateResuming, rc.StateActive)
		if evs[1].Err == nil {
			t.Error("resume-failed without an error")
		}
	})

	t.Run("Close", func(t *testing.T) {
		if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		closed = true
		// Close returns after the callback took the last event.
		evs, _ := events.snapshot()
		if got := kindsOf(evs[n:]); !slices.Equal(got, []rc.ClientEventKind{rc.ClientClosed}) {
			t.Fatalf("events after Close %v, want [closed]", got)
		}
		checkStates(t, c, evs[n:], rc.StateClosed)
		if evs[n].Err != nil {
			t.Errorf("orderly close with err %v", evs[n].Err)
		}
		if c.State() != rc.StateClosed {
			t.Errorf("State after Close = %s", c.State())
		}
	})
}

func waitDoneWithin(t *testing.T, c *rc.Client, d time.Duration) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(d):
		t.Fatalf("Done not closed within %s", d)
	}
}

// TestClientClosedAfterDrop: Close on a client whose connection was lost
// reports the loss: the session was not closed on the server.
func TestClientClosedAfterDrop(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	events := newEventLog()
	c, relay := build(t, newFactory(t, rc.ClientConfig{OnClientEvent: events.record}), srv)
	relay.Close()
	waitDone(t, c)
	if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Close after a drop = %v, want nil", err)
	}
	evs := events.await(t, 0, rc.ClientActive, rc.ClientDisconnected, rc.ClientClosed)
	checkStates(t, c, evs, rc.StateActive, rc.StateDisconnected, rc.StateClosed)
	if !errors.Is(evs[2].Err, rc.ErrConnectionLost) {
		t.Errorf("closed err %v, want ErrConnectionLost", evs[2].Err)
	}
}

// TestClientEventsAfterRestart: a server that restarted has lost the
// session: Resume reports resumed with SessionRecreated, the subscription
// is recreated with its item and its loss reported as a gap.
func TestClientEventsAfterRestart(t *testing.T) {
	const name = "Counter"
	srv := newServer(t, rctest.Options{})
	node := srv.AddVariable(name, int32(1), true)
	events := newEventLog()
	c, relay := build(t, newFactory(t, rc.ClientConfig{OnClientEvent: events.record}), srv)
	sub := subscribeTo(t, t, c, node)
	oldID := sub.ID()

	srv.Close() // the restart: sessions and subscriptions gone
	relay.Close()
	waitDone(t, c)
	srv2 := newServer(t, rctest.Options{})
	srv2.AddVariable(name, int32(2), true)
	ln := listen(t)
	s, r := reverseConnect(t, srv2, ln)
	t.Cleanup(r.Close)
	outcome, err := c.Resume(ctxTimeout(t, 10*time.Second), s)
	if err != nil || outcome != rc.SessionRecreated {
		t.Fatalf("Resume = %v, %v; want recreated", outcome, err)
	}
	evs := events.await(t, 1, rc.ClientDisconnected, rc.ClientResuming, rc.ClientResumed, rc.PublishGap, rc.PublishRecreated)
	checkStates(t, c, evs, rc.StateDisconnected, rc.StateResuming, rc.StateActive, rc.StateActive, rc.StateActive)
	if evs[2].Outcome != rc.SessionRecreated {
		t.Errorf("resumed outcome %v, want recreated", evs[2].Outcome)
	}
	if g := evs[3]; g.SubscriptionID != oldID || g.FirstLost == 0 || g.LastLost != 0 {
		t.Errorf("gap %+v: want subscription %d from its next sequence number, open-ended", g, oldID)
	}
	if rec := evs[4]; rec.SubscriptionID != oldID || rec.NewSubscriptionID != sub.ID() {
		t.Errorf("recreated %+v: want %d → %d", rec, oldID, sub.ID())
	}
	if items := sub.Items(); len(items) != 1 || !items[0].Request.NodeID.Equal(node) {
		t.Errorf("items after the recreate: %+v", items)
	}
}

// TestClientEventsSlowCallback: a callback that does not keep up never
// holds up the client; beyond the queue's bound the oldest events are
// dropped and counted in the next one's Missed, the newest kept in order.
func TestClientEventsSlowCallback(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	events := newEventLog()
	release := make(chan struct{})
	c, _ := build(t, newFactory(t, rc.ClientConfig{OnClientEvent: events.record}), srv)
	events.await(t, 0, rc.ClientActive)
	events.mu.Lock()
	events.block = release
	events.mu.Unlock()
	const n = 300
	finishes(t, 5*time.Second, func() {
		for i := range n {
			rc.Emit(c, rc.ClientEvent{Kind: rc.PublishGap, SubscriptionID: 7, FirstLost: uint32(i + 1), LastLost: uint32(i + 1)})
		}
	})
	events.mu.Lock()
	events.block = nil
	events.mu.Unlock()
	close(release)
	if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	evs, _ := events.snapshot()
	evs = evs[1:]
	// The callback held the first gap while the rest queued: 256 of the
	// others fit, the oldest 43 were dropped, and Closed came last.
	var missed uint64
	var last uint32
	for _, ev := range evs {
		missed += ev.Missed
		if ev.Kind == rc.PublishGap {
			if ev.FirstLost <= last {
				t.Fatalf("gap %d after %d: out of order", ev.FirstLost, last)
			}
			last = ev.FirstLost
		}
	}
	if got := uint64(len(evs)) + missed; got != n+1 {
		t.Errorf("%d delivered + %d missed = %d, want %d", len(evs), missed, got, n+1)
	}
	if missed == 0 || last != n || evs[len(evs)-1].Kind != rc.ClientClosed {
		t.Errorf("missed %d, last gap %d, last event %s: want some missed, gap %d and closed last", missed, last, evs[len(evs)-1].Kind, n)
	}
}

// TestClientEventsWithoutCallback: without a callback the state is kept
// all the same.
func TestClientEventsWithoutCallback(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	c, relay := build(t, newFactory(t, rc.ClientConfig{}), srv)
	if c.State() != rc.StateActive {
		t.Fatalf("State = %s", c.State())
	}
	relay.Close()
	waitDone(t, c)
	if c.State() != rc.StateDisconnected {
		t.Fatalf("State after the drop = %s", c.State())
	}
	_ = c.Close(ctxTimeout(t, 5*time.Second))
	if c.State() != rc.StateClosed {
		t.Fatalf("State after Close = %s", c.State())
	}
}
