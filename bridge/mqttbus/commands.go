package mqttbus

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/buskit"
	"github.com/rcbridge/rcbridge/mapping"
)

// commands is the state of the CommandSource: routes, the bounded queue
// between paho's receiving goroutine and the dispatcher.
type commands struct {
	ch chan inbound

	// mu guards routes and filters and is held while a handler runs, so
	// that after Unsubscribe returns its handler is not called again.
	mu sync.Mutex
	// routes holds every route of every active subscription: literal
	// routes (also those a filter delivers) and filters.
	routes  map[string]*cmdEntry
	filters []string
}

// inbound is one command as received from paho.
type inbound struct {
	route   string
	payload []byte
}

type cmdEntry struct {
	route  string
	h      bridge.CommandHandler
	broker bool // subscribed at the broker (a filter, or a literal no filter covers)
}

func (c *commands) init(queue int) {
	c.ch = make(chan inbound, queue)
	c.routes = make(map[string]*cmdEntry)
}

// Subscribe implements bridge.CommandSource: commands arrive on the route
// (the command topic, such as `<topic>/set`); Command.Reply publishes on
// `<route>/result`. A filter ("rcbridge/+/+/set") delivers every command
// on a matching topic with Command.Route set to that topic; a literal
// route it matches is not subscribed again, so that paho does not hand
// the same PUBLISH to two subscriptions.
func (b *Bus) Subscribe(ctx context.Context, routes []string, h bridge.CommandHandler) (bridge.Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("mqttbus: subscribe: nil handler")
	}
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		return nil, fmt.Errorf("mqttbus: subscribe: %w", bridge.ErrClosed)
	}
	c := &b.cmd
	c.mu.Lock()
	broker, err := buskit.CheckRoutes(mapping.MQTT, "mqttbus", routes, slices.Collect(maps.Keys(c.routes)),
		func(r string) error { return validTopic(r + resultSuffix) })
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	s := &subscription{b: b, routes: slices.Clone(routes), broker: broker}
	for _, r := range routes {
		c.routes[r] = &cmdEntry{route: r, h: h, broker: slices.Contains(broker, r)}
	}
	c.resetFilters()
	c.mu.Unlock()
	if err := b.subscribeTopics(ctx, broker); err != nil {
		c.mu.Lock()
		for _, r := range routes {
			delete(c.routes, r)
		}
		c.resetFilters()
		c.mu.Unlock()
		return nil, err
	}
	return s, nil
}

// resetFilters lists the filters among routes again. Caller holds c.mu.
func (c *commands) resetFilters() {
	c.filters = c.filters[:0]
	for r := range c.routes {
		if mapping.MQTT.IsFilter(r) {
			c.filters = append(c.filters, r)
		}
	}
}

// brokerRoutes returns the routes subscribed at the broker. Caller holds
// c.mu.
func (c *commands) brokerRoutes() []string {
	var out []string
	for r, e := range c.routes {
		if e.broker {
			out = append(out, r)
		}
	}
	return out
}

// subscribeTopics subscribes every route and waits for the SUBACK.
func (b *Bus) subscribeTopics(ctx context.Context, routes []string) error {
	if !b.c.IsConnectionOpen() {
		return fmt.Errorf("mqttbus: subscribe: %w", bridge.ErrNotConnected)
	}
	filters := make(map[string]byte, len(routes))
	for _, r := range routes {
		filters[r] = byte(*b.o.CommandQoS)
	}
	tok := b.c.SubscribeMultiple(filters, b.onCommand)
	ctx, cancel := withDefaultTimeout(ctx, b.o.AckTimeout)
	defer cancel()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("mqttbus: subscribe: no SUBACK: %w", ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqttbus: subscribe: %w", err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for topic, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("mqttbus: subscribe %q: refused by the broker", topic)
			}
		}
	}
	return nil
}

// resubscribe subscribes every command route again after a connect.
func (b *Bus) resubscribe() {
	b.cmd.mu.Lock()
	routes := b.cmd.brokerRoutes()
	b.cmd.mu.Unlock()
	var err error
	if len(routes) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), b.o.AckTimeout)
		err = b.subscribeTopics(ctx, routes)
		cancel()
	}
	b.mu.Lock()
	b.cmdErr = err
	b.mu.Unlock()
	if err != nil {
		b.log.Warn("command routes not subscribed again; retrying", "err", err)
		b.resub.Store(true)
		b.retryLater(time.Second)
	}
}

// onCommand runs on paho's receiving goroutine: it must not block.
func (b *Bus) onCommand(_ mqtt.Client, m mqtt.Message) {
	if m.Retained() {
		// A retained command would be carried out again at every
		// subscribe: refuse it.
		b.m.CommandsDropped.Add(1)
		b.log.Warn("retained command ignored", "topic", m.Topic())
		return
	}
	route := m.Topic()
	select {
	case b.cmd.ch <- inbound{route: route, payload: m.Payload()}:
	default:
		b.m.CommandsDropped.Add(1)
		b.log.Warn("command dropped: command queue full", "route", route)
	}
}

// dispatch is the goroutine that hands commands to their handlers.
func (b *Bus) dispatch() {
	defer b.wg.Done()
	for {
		select {
		case in := <-b.cmd.ch:
			b.deliver(in)
		case <-b.stopCh:
			return
		}
	}
}

func (b *Bus) deliver(in inbound) {
	c := &b.cmd
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.routes[in.route]
	if e == nil {
		e = c.routes[buskit.MatchFilter(mapping.MQTT, c.filters, in.route)]
	}
	if e == nil {
		b.m.CommandsDropped.Add(1)
		b.log.Warn("command for an unsubscribed route dropped", "route", in.route)
		return
	}
	b.m.CommandsReceived.Add(1)
	topic := in.route + resultSuffix
	e.h(bridge.NewCommand(in.route, in.payload, func(ctx context.Context, payload []byte) error {
		if err := b.publishTracked(ctx, topic, *b.o.CommandQoS, false, payload); err != nil {
			return fmt.Errorf("mqttbus: reply: %w", err)
		}
		return nil
	}))
}

// subscription implements bridge.Subscription.
type subscription struct {
	b      *Bus
	once   sync.Once
	routes []string
	broker []string // the routes subscribed at the broker
}

// Unsubscribe implements bridge.Subscription. It must not be called from
// the CommandHandler.
func (s *subscription) Unsubscribe(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		c := &s.b.cmd
		c.mu.Lock()
		for _, r := range s.routes {
			delete(c.routes, r)
		}
		c.resetFilters()
		c.mu.Unlock()
		err = s.b.unsubscribeTopics(ctx, s.broker)
	})
	return err
}

// unsubscribeAll ends every command subscription (Close).
func (c *commands) unsubscribeAll(ctx context.Context, b *Bus) error {
	c.mu.Lock()
	routes := c.brokerRoutes()
	clear(c.routes)
	c.resetFilters()
	c.mu.Unlock()
	if len(routes) == 0 {
		return nil
	}
	return b.unsubscribeTopics(ctx, routes)
}

// unsubscribeTopics unsubscribes every route at the broker.
func (b *Bus) unsubscribeTopics(ctx context.Context, routes []string) error {
	if !b.c.IsConnectionOpen() {
		// The route is gone locally; what the broker still delivers for it
		// is dropped and counted.
		return nil
	}
	tok := b.c.Unsubscribe(routes...)
	ctx, cancel := withDefaultTimeout(ctx, b.o.AckTimeout)
	defer cancel()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqttbus: unsubscribe: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqttbus: unsubscribe: no UNSUBACK: %w", ctx.Err())
	}
}
