package natsbus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/buskit"
	"github.com/rcbridge/rcbridge/mapping"
)

// commands is the state of the CommandSource: one channel shared by every
// command subscription (nats.go drops and counts what does not fit) and
// one dispatcher goroutine.
type commands struct {
	ch chan *nats.Msg

	// mu guards the maps and is held while a handler runs, so that after
	// Unsubscribe returns its handler is not called again.
	mu   sync.Mutex
	subs map[*nats.Subscription]*cmdEntry
	// active holds every route of every active subscription, the literal
	// ones a filter delivers included.
	active map[string]bool
}

// cmdEntry is one route subscribed at the server: a literal route or a
// filter.
type cmdEntry struct {
	route   string
	h       bridge.CommandHandler
	sub     *nats.Subscription
	dropped int // drops already counted
}

func (c *commands) init(queue int) {
	c.ch = make(chan *nats.Msg, queue)
	c.subs = make(map[*nats.Subscription]*cmdEntry)
	c.active = make(map[string]bool)
}

// Subscribe implements bridge.CommandSource. Commands are NATS requests on
// the route; the reply goes to the request's reply subject. A filter
// ("rcbridge.*.*.set") delivers every command on a matching subject with
// Command.Route set to that subject; a literal route it matches is not
// subscribed again.
func (b *Bus) Subscribe(ctx context.Context, routes []string, h bridge.CommandHandler) (bridge.Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("natsbus: subscribe: nil handler")
	}
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		return nil, fmt.Errorf("natsbus: subscribe: %w", bridge.ErrClosed)
	}
	c := &b.cmd
	c.mu.Lock()
	broker, err := buskit.CheckRoutes(mapping.NATS, "natsbus", routes, slices.Collect(maps.Keys(c.active)), validSubject)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	s := &subscription{b: b, routes: slices.Clone(routes)}
	for _, r := range routes {
		c.active[r] = true
		if f := b.capture.overlapping(r); f != "" {
			b.log.Warn("the stream captures a command route: requests there get its PubAck too, possibly before the bridge's reply",
				"stream", b.o.JetStream.Stream, "subject", f, "route", r)
		}
	}
	for _, r := range broker {
		sub, err := b.nc.ChanSubscribe(r, c.ch)
		if err != nil {
			c.mu.Unlock()
			s.Unsubscribe(ctx)
			return nil, fmt.Errorf("natsbus: subscribe %q: %w", r, natsErr(err))
		}
		e := &cmdEntry{route: r, h: h, sub: sub}
		c.subs[sub] = e
		s.entries = append(s.entries, e)
	}
	c.mu.Unlock()
	fctx, cancel := withDefaultTimeout(ctx, b.o.FlushTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		s.Unsubscribe(ctx)
		return nil, fmt.Errorf("natsbus: subscribe: server did not confirm: %w", natsErr(err))
	}
	return s, nil
}

// subscription implements bridge.Subscription.
type subscription struct {
	b       *Bus
	once    sync.Once
	routes  []string
	entries []*cmdEntry
}

// Unsubscribe implements bridge.Subscription. It must not be called from
// the CommandHandler.
func (s *subscription) Unsubscribe(context.Context) error {
	var errs []error
	s.once.Do(func() {
		c := &s.b.cmd
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range s.routes {
			delete(c.active, r)
		}
		for _, e := range s.entries {
			errs = append(errs, c.removeLocked(e, s.b))
		}
	})
	return errors.Join(errs...)
}

// removeLocked ends one route's subscription. Caller holds c.mu.
func (c *commands) removeLocked(e *cmdEntry, b *Bus) error {
	if c.subs[e.sub] != e {
		return nil
	}
	c.countDropped(e, b)
	delete(c.subs, e.sub)
	if err := e.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("natsbus: unsubscribe %q: %w", e.route, err)
	}
	return nil
}

// unsubscribeAll ends every command subscription (Close).
func (c *commands) unsubscribeAll(b *Bus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.subs {
		_ = c.removeLocked(e, b)
	}
	clear(c.active)
}

// countDropped adds the commands nats.go dropped for e since last time.
func (c *commands) countDropped(e *cmdEntry, b *Bus) {
	if d, err := e.sub.Dropped(); err == nil && d > e.dropped {
		b.m.CommandsDropped.Add(uint64(d - e.dropped))
		b.log.Warn("commands dropped: command queue full", "route", e.route, "dropped", d-e.dropped)
		e.dropped = d
	}
}

// dispatch is the goroutine that hands commands to their handlers.
func (b *Bus) dispatch() {
	defer b.wg.Done()
	for {
		select {
		case m := <-b.cmd.ch:
			b.deliver(m)
		case <-b.stopCh:
			return
		}
	}
}

func (b *Bus) deliver(m *nats.Msg) {
	c := &b.cmd
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.subs[m.Sub]
	if e == nil {
		return
	}
	c.countDropped(e, b)
	b.m.CommandsReceived.Add(1)
	var reply bridge.ReplyFunc
	if to := m.Reply; to != "" {
		reply = func(ctx context.Context, payload []byte) error { return b.reply(ctx, to, payload) }
	}
	e.h(bridge.NewCommand(m.Subject, m.Data, reply))
}

// reply publishes a command's answer and waits until the server has it.
func (b *Bus) reply(ctx context.Context, to string, payload []byte) error {
	if err := b.nc.Publish(to, payload); err != nil {
		return fmt.Errorf("natsbus: reply: %w", natsErr(err))
	}
	ctx, cancel := withDefaultTimeout(ctx, b.o.FlushTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("natsbus: reply: %w", natsErr(err))
	}
	return nil
}
