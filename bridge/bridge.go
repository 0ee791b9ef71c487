package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rcbridge/rcbridge/mapping"
)

// ErrRunning is returned by a second call of Run.
var ErrRunning = errors.New("bridge: already running")

// Bridge runs one supervisor per server of the mapping table and the
// command handling. Create it with New, run it with Run; it is done when
// Run returns. The daemon closes the bus after that.
type Bridge struct {
	cfg   Config
	log   *slog.Logger
	sups  []*supervisor
	byURI map[string]*supervisor
	// readOnly maps the would-be write routes of published read-only rows
	// to their items, so that writes to them are answered.
	readOnly map[string]*mapping.Item
	refusals chan refusal
	dedup    *dedup // nil when off

	running       atomic.Bool
	done          chan struct{}
	commandsReady chan struct{}
}

// New checks cfg and returns a Bridge.
func New(cfg Config) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Bridge{
		cfg:           cfg,
		log:           cfg.Logger,
		byURI:         make(map[string]*supervisor),
		refusals:      make(chan refusal, cfg.RejectQueue),
		done:          make(chan struct{}),
		commandsReady: make(chan struct{}),
	}
	if cfg.DedupWindow > 0 {
		b.dedup = newDedup(cfg.DedupWindow, cfg.DedupSize)
	}
	per := make(map[string]ServerConfig, len(cfg.Servers))
	for _, s := range cfg.Servers {
		per[s.URI] = s
	}
	for _, srv := range cfg.Table.Servers() {
		sc := per[srv.URI]
		sc.URI = srv.URI
		s := newSupervisor(b, srv, sc.withDefaults())
		b.sups = append(b.sups, s)
		b.byURI[srv.URI] = s
	}
	if err := b.checkEventRoutes(); err != nil {
		return nil, err
	}
	if !cfg.NoReadOnlyRoutes && cfg.Commands != nil {
		b.readOnly = cfg.Table.ReadOnlyRoutes()
	}
	return b, nil
}

// checkEventRoutes makes sure no row uses a server's events route.
func (b *Bridge) checkEventRoutes() error {
	events := make(map[string]string, len(b.sups))
	for _, s := range b.sups {
		events[s.eventsRoute] = s.uri
	}
	var errs []error
	for _, s := range b.sups {
		for _, it := range s.items {
			for _, r := range []string{it.Route, it.CommandRoute} {
				if uri, ok := events[r]; ok {
					errs = append(errs, fmt.Errorf("%w: map[%d] route %q is the events route of server %q", ErrInvalidConfig, it.Row, r, uri))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Run runs the bridge until ctx ends, then shuts down within about
// ShutdownTimeout: sessions closed, every server's presence published as
// offline, command routes unsubscribed, queued commands answered. It
// returns nil after a shutdown caused by ctx, or ErrRunning when called
// again.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(b.done)
	stopCmds := make(chan struct{})
	var workers, sups sync.WaitGroup
	workers.Go(func() { b.replyLoop(ctx, stopCmds) })
	for _, s := range b.sups {
		workers.Go(func() { s.commandLoop(ctx, stopCmds) })
		sups.Go(func() { s.run(ctx) })
	}
	if b.cfg.Commands != nil {
		sups.Go(func() { b.serveCommands(ctx) })
	} else {
		close(b.commandsReady)
	}
	b.log.Info("bridge running", "servers", len(b.sups))
	sups.Wait()
	close(stopCmds)
	workers.Wait()
	b.log.Info("bridge stopped")
	return nil
}

// Done is closed when Run has returned.
func (b *Bridge) Done() <-chan struct{} { return b.done }

// CommandsReady is closed once the command routes are subscribed (at once
// when there are none, or no CommandSource). Until then commands get no
// answer: nobody listens.
func (b *Bridge) CommandsReady() <-chan struct{} { return b.commandsReady }

// serveCommands subscribes the command routes, retrying until it works or
// ctx ends, and unsubscribes them when ctx ends.
func (b *Bridge) serveCommands(ctx context.Context) {
	routes := b.cfg.Table.CommandRoutes()
	for r := range b.readOnly {
		routes = append(routes, r)
	}
	if !b.cfg.NoUnknownRoutes {
		routes = append(routes, b.cfg.Table.CommandFilters()...)
	}
	if len(routes) == 0 {
		close(b.commandsReady)
		return
	}
	delay := b.cfg.MinRetryDelay
	for {
		sub, err := b.cfg.Commands.Subscribe(ctx, routes, b.handle)
		if err == nil {
			b.log.Info("command routes subscribed", "routes", len(routes))
			close(b.commandsReady)
			<-ctx.Done()
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.ShutdownTimeout)
			defer cancel()
			if err := sub.Unsubscribe(uctx); err != nil {
				b.log.Warn("command routes not unsubscribed", "err", err)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrInvalidRoute) {
			b.log.Error("command routes refused by the bus; commands are off", "err", err)
			return
		}
		b.log.Warn("command routes not subscribed; retrying", "err", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, b.cfg.MaxRetryDelay)
	}
}

// ServerStatus is the presence of one server as the bridge sees it.
type ServerStatus struct {
	URI   string
	Key   string
	State PresenceState
	Since time.Time
}

// Servers returns the status of every server, in the Table's order.
func (b *Bridge) Servers() []ServerStatus {
	out := make([]ServerStatus, len(b.sups))
	for i, s := range b.sups {
		st, since, _ := s.status()
		out[i] = ServerStatus{URI: s.uri, Key: s.key, State: st, Since: since}
	}
	return out
}

// AwaitState waits until the server with ServerUri uri is in state st or
// ctx ends. It returns an error wrapping mapping.ErrUnknownServer for a
// server that is not in the Table.
func (b *Bridge) AwaitState(ctx context.Context, uri string, st PresenceState) error {
	s, ok := b.byURI[uri]
	if !ok {
		return fmt.Errorf("bridge: %w: %q", mapping.ErrUnknownServer, uri)
	}
	for {
		cur, since, changed := s.status()
		if cur == st && !since.IsZero() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("bridge: server %q is %s, not %s: %w", uri, cur, st, ctx.Err())
		}
	}
}
