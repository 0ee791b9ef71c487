package bustest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

// replies answers commands as the bridge will: from a goroutine of its
// own per command (the handler itself must not block), echoing
// "<route>|<payload>". A test waits for the answers it started before it
// closes the bus: an answer still flushing when the bus closes fails with
// ErrClosed, and a failure reported after the test returned panics
// ("Fail in goroutine after ... has completed").
type replies struct {
	t  *testing.T
	wg sync.WaitGroup
}

func newReplies(t *testing.T) *replies { return &replies{t: t} }

// echo returns the answering CommandHandler.
func (r *replies) echo() bridge.CommandHandler {
	return func(c bridge.Command) {
		r.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// A command sent without a way to answer (a NATS publish) is
			// refused with ErrNoReply; anything else is a failure.
			if err := c.Reply(ctx, append([]byte(c.Route+"|"), c.Payload...)); err != nil && !errors.Is(err, bridge.ErrNoReply) {
				r.t.Errorf("Reply on %q: %v", c.Route, err)
			}
		})
	}
}

// wait returns when every answer started so far is done.
func (r *replies) wait() { r.wg.Wait() }

func roundTrip(t *testing.T, h Harness, route, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	got, err := h.Command(ctx, t, route, []byte(payload))
	if err != nil {
		t.Fatalf("command on %q: %v", route, err)
	}
	if want := route + "|" + payload; string(got) != want {
		t.Fatalf("command on %q: reply %q, want %q", route, got, want)
	}
}

func testCommandRoundTrip(t *testing.T, h Harness) {
	var cnt counters
	p := h.cmdPrefix(t)
	bus := h.Open(t, Config{Metrics: cnt.metrics()})
	defer closeBus(t, bus)
	r := newReplies(t)
	defer r.wait() // runs before closeBus
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r1, r2 := h.route(p, "line1", "setpoint"), h.route(p, "line1", "start")
	sub, err := bus.Subscribe(ctx, []string{r1, r2}, r.echo())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	roundTrip(t, h, r1, `{"id":"c1","value":42}`)
	roundTrip(t, h, r2, `{"id":"c2"}`)
	roundTrip(t, h, r1, `{"id":"c3","value":43}`)
	if got := cnt.received.Load(); got != 3 {
		t.Errorf("CommandsReceived = %d, want 3", got)
	}

	for name, routes := range map[string][]string{
		"already subscribed": {h.route(p, "other"), r1},
		"wildcards":          {h.route(p, "x*+#")},
		"empty":              {""},
		"none":               nil,
	} {
		if s, err := bus.Subscribe(ctx, routes, r.echo()); !errors.Is(err, bridge.ErrInvalidRoute) {
			t.Errorf("Subscribe %s: error %v, want ErrInvalidRoute", name, err)
			if s != nil {
				_ = s.Unsubscribe(ctx)
			}
		}
	}
	// The refused call must not have subscribed its valid route.
	other, err := bus.Subscribe(ctx, []string{h.route(p, "other")}, r.echo())
	if err != nil {
		t.Fatalf("Subscribe after refused call: %v", err)
	}
	roundTrip(t, h, h.route(p, "other"), "x")

	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Errorf("second Unsubscribe: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if got, err := h.Command(short, t, r1, []byte("late")); err == nil {
		t.Errorf("command after Unsubscribe answered %q", got)
	}
	roundTrip(t, h, h.route(p, "other"), "still")
	_ = other.Unsubscribe(ctx)
}

// testSlowCommandHandler blocks the handler (against its contract, as a
// slow bridge would) and floods commands: the adapter drops what does not
// fit its bounded queue, counts every drop, and recovers.
func testSlowCommandHandler(t *testing.T, h Harness) {
	const flood, queue = 30, 2
	var cnt counters
	p := h.cmdPrefix(t)
	bus := h.Open(t, Config{CommandQueue: queue, Metrics: cnt.metrics()})
	defer closeBus(t, bus)
	r := newReplies(t)
	defer r.wait() // runs before closeBus
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	route := h.route(p, "cmd")
	block := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(block) })
	defer unblock() // a failed wait below must not leave the handler blocked for Close
	var calls atomic.Int64
	reply := r.echo()
	if _, err := bus.Subscribe(ctx, []string{route}, func(c bridge.Command) {
		if calls.Add(1) == 1 {
			<-block
		}
		reply(c)
	}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	h.Notify(t, route, []byte("first"))
	eventually(t, 10*time.Second, "first command delivered", func() bool { return calls.Load() == 1 })
	for i := range flood {
		h.Notify(t, route, []byte(strconv.Itoa(i)))
	}
	// Notify returns once the broker has a command, not once the adapter
	// has it. The handler stays blocked until the flood has reached the
	// adapter: under load it could otherwise arrive after the handler was
	// free again, and nothing would be dropped.
	if h.DropsCountedAtOnce {
		// "first" is in the handler and queue commands wait: every other
		// one is dropped, and counted as it is.
		eventually(t, 10*time.Second, "the flood beyond the queue dropped", func() bool {
			return cnt.dropped.Load() == flood-queue
		})
	} else {
		// The adapter's connection carries the commands and the broker's
		// confirmations in order: a publish confirmed now was confirmed
		// behind the flood.
		c := newConfirms()
		if err := c.publish(ctx, bus, 0, []bridge.Message{h.msg(h.route(h.prefix(t), "barrier"), 0)}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		c.await(t, 10*time.Second)
		if errs := c.check(t); len(errs) > 0 {
			t.Fatalf("publish behind the flood: %v", errs[0])
		}
	}
	unblock()
	// The queued commands are handed over before the next one is sent, or
	// it could be dropped as well.
	eventually(t, 10*time.Second, "flood delivered or counted as dropped", func() bool {
		return cnt.received.Load()+cnt.dropped.Load() == flood+1
	})
	roundTrip(t, h, route, "after")
	eventually(t, 10*time.Second, "every command delivered or counted as dropped", func() bool {
		return cnt.received.Load()+cnt.dropped.Load() == flood+2
	})
	if cnt.dropped.Load() == 0 {
		t.Errorf("no command dropped with a queue of 2 and a blocked handler")
	}
	if int64(cnt.received.Load()) != calls.Load() {
		t.Errorf("CommandsReceived = %d, handler called %d times", cnt.received.Load(), calls.Load())
	}
}

// testCommandsAfterRestart checks that command routes are subscribed again
// after the broker lost them.
func testCommandsAfterRestart(t *testing.T, h Harness) {
	p := h.cmdPrefix(t)
	bus := h.Open(t, Config{})
	defer closeBus(t, bus)
	r := newReplies(t)
	defer r.wait() // runs before closeBus
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	route := h.route(p, "cmd")
	if _, err := bus.Subscribe(ctx, []string{route}, r.echo()); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	roundTrip(t, h, route, "before")
	h.RestartBroker(t, nil)
	eventually(t, 20*time.Second, "adapter ready after restart", func() bool { return bus.Ready() == nil })
	// The command client reconnects too; allow it a few tries.
	var last error
	for range 20 {
		c, cancel := context.WithTimeout(ctx, time.Second)
		got, err := h.Command(c, t, route, []byte("after"))
		if err != nil {
			<-c.Done() // the attempt failed fast (client not back yet): pace the retries
		}
		cancel()
		if err == nil {
			if string(got) != route+"|after" {
				t.Fatalf("reply %q", got)
			}
			return
		}
		last = err
	}
	t.Fatalf("no answer after restart: %v", last)
}
