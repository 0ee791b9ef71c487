package bustest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

// wild is the single-level wildcard of the harness's bus.
func (h *Harness) wild() string {
	if h.Sep == "/" {
		return "+"
	}
	return "*"
}

// routeLog is an echo handler that also records the route of every
// command it was handed.
type routeLog struct {
	mu     sync.Mutex
	routes []string
}

func (l *routeLog) handler(r *replies) bridge.CommandHandler {
	reply := r.echo()
	return func(c bridge.Command) {
		l.mu.Lock()
		l.routes = append(l.routes, c.Route)
		l.mu.Unlock()
		reply(c)
	}
}

func (l *routeLog) count(route string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.routes {
		if r == route {
			n++
		}
	}
	return n
}

func (l *routeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.routes)
}

// testCommandFilters checks command routes with single-level wildcards: a
// filter delivers commands on every matching route, with the route they
// were sent on (so that the bridge answers unknown routes); a literal
// route it covers is delivered once, not twice; nothing outside the
// filter's depth or last token (data routes, MQTT result topics) is
// delivered; overlapping routes are refused.
func testCommandFilters(t *testing.T, h Harness) {
	var cnt counters
	p, w := h.cmdPrefix(t), h.wild()
	bus := h.Open(t, Config{Metrics: cnt.metrics()})
	defer closeBus(t, bus)
	r := newReplies(t)
	defer r.wait() // runs before closeBus
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	filter := h.route(p, w, w, "set")
	covered := h.route(p, "line1", "speed", "set")
	other := h.route(p, "line1", "write")
	var log routeLog
	sub, err := bus.Subscribe(ctx, []string{covered, filter, other}, log.handler(r))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	unknown := h.route(p, "typo", "speed", "set")
	roundTrip(t, h, covered, `{"id":"a"}`)
	roundTrip(t, h, unknown, `{"id":"b"}`)
	roundTrip(t, h, other, `{"id":"c"}`)
	// Not commands: a data-shaped route, an MQTT-style result topic, a
	// deeper route. None may reach the handler.
	notCommands := []string{h.route(p, "line1", "speed"), h.route(unknown, "result"), h.route(p, "a", "b", "c", "set")}
	for _, r := range notCommands {
		h.Notify(t, r, []byte(`{"id":"x"}`))
	}
	// A last round trip on the covered route: any second copy of the
	// first one, and the messages above, were delivered before it.
	roundTrip(t, h, covered, `{"id":"d"}`)
	if n := log.count(covered); n != 2 {
		t.Errorf("covered route delivered %d times for 2 commands (routes seen %q)", n, log.all())
	}
	for _, r := range notCommands {
		if log.count(r) != 0 {
			t.Errorf("%q delivered to the handler: it matches no route", r)
		}
	}
	if got := cnt.received.Load(); got != 4 {
		t.Errorf("CommandsReceived = %d, want 4", got)
	}

	for name, routes := range map[string][]string{
		"literal under an active filter": {h.route(p, "l2", "x", "set")},
		"filter over an active literal":  {h.route(p, "line1", w)},
		"filter over an active filter":   {h.route(p, w, "speed", "set")},
		"overlapping filters":            {h.route(p, w, "k", "call"), h.route(p, "j", w, "call")},
		"wildcard last":                  {h.route(p, "x", w)},
		"multi-level wildcard":           {h.route(p, ">"), h.route(p, "#")},
		"partial wildcard":               {h.route(p, "a"+w, "set")},
	} {
		if s, err := bus.Subscribe(ctx, routes, r.echo()); !errors.Is(err, bridge.ErrInvalidRoute) {
			t.Errorf("Subscribe %s %q: error %v, want ErrInvalidRoute", name, routes, err)
			if s != nil {
				_ = s.Unsubscribe(ctx)
			}
		}
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if got, err := h.Command(short, t, unknown, []byte("late")); err == nil {
		t.Errorf("command after Unsubscribe answered %q", got)
	}
	// The routes are free again: the covered literal alone.
	again, err := bus.Subscribe(ctx, []string{covered}, r.echo())
	if err != nil {
		t.Fatalf("Subscribe after Unsubscribe: %v", err)
	}
	roundTrip(t, h, covered, "again")
	_ = again.Unsubscribe(ctx)
}
