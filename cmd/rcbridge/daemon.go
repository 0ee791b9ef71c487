package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/rcsource"
	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc"
	"golang.org/x/sync/errgroup"
)

// errForcedShutdown means the graceful shutdown did not finish within its
// deadline and the remaining parts were closed hard.
var errForcedShutdown = errors.New("rcbridge: graceful shutdown did not finish in time; closed forcefully")

// runOptions are the daemon's inputs besides the configuration.
type runOptions struct {
	log       *slog.Logger
	lookupEnv func(string) (string, bool)
	// shutdownTimeout bounds the graceful shutdown.
	shutdownTimeout time.Duration
	version         string
	// started, if not nil, is called once every part runs, with the
	// addresses actually bound (useful with port 0).
	started func(addrs)
}

// addrs are the addresses the daemon serves on.
type addrs struct {
	Listener string // reverse connections
	HTTP     string // empty when [http] address is empty
	Bus      string // the bus URL(s) the daemon connected to
}

// daemon is one run of rcbridge: the parts, started in order and stopped
// in reverse. The listener admits reverse connections; the broker sorts
// them by server; the bridge (one supervisor per server) takes them,
// builds the OPC UA sessions through rcsource, and publishes through the
// bus adapter, reporting into the registry and the metrics.
type daemon struct {
	cfg *config.Config
	o   runOptions
	log *slog.Logger

	table *mapping.Table
	reg   *registry
	m     *metrics

	embedded *embeddedNATS // nil unless [bus] kind = "embedded"
	bus      bridge.Bus
	ln       *rc.Listener
	broker   *rc.Broker
	bridge   *bridge.Bridge
	httpSrv  *http.Server
	httpLn   net.Listener

	stopping atomic.Bool
}

// run runs the daemon until ctx is done, then shuts it down gracefully
// within o.shutdownTimeout. It returns nil after a clean shutdown.
func run(ctx context.Context, cfg *config.Config, o runOptions) error {
	d := &daemon{cfg: cfg, o: o, log: o.log}
	if err := d.start(ctx); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
		defer cancel()
		d.closeAll(ctx)
		return err
	}
	return d.serve(ctx)
}

// start builds and starts every part. On error the caller closes the parts
// already started (closeAll copes with missing ones).
func (d *daemon) start(ctx context.Context) error {
	cfg, log := d.cfg, d.log
	table, err := cfg.Table()
	if err != nil {
		return err
	}
	d.table = table
	keys := make(map[string]string)
	for _, s := range table.Servers() {
		keys[s.URI] = s.Key
	}
	d.reg = newRegistry(cfg.Servers, keys, time.Now)
	for _, s := range table.Servers() {
		d.reg.setItems(s.URI, publishedItems(table, s.URI))
	}
	d.m = newMetrics(d.o.version, d.reg.states)

	kp, err := clientKeyPair(cfg.Client, log)
	if err != nil {
		return err
	}
	clients, err := clientConfigs(cfg, kp, d.o.lookupEnv, log.With("component", "client"))
	if err != nil {
		return err
	}

	setup := busSetup{table: table, lookupEnv: d.o.lookupEnv, metrics: d.m.busMetrics(), log: log}
	if cfg.Bus.Kind == config.BusEmbedded {
		if d.embedded, err = startEmbedded(cfg.Bus.Embedded, log); err != nil {
			return err
		}
		setup.embeddedURL = d.embedded.ClientURL()
	}
	if d.bus, err = openBus(ctx, cfg, setup); err != nil {
		return err
	}

	uris := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		uris[i] = s.URI
	}
	allow, err := rc.NewAllowList(uris...)
	if err != nil {
		return err
	}
	observer := rc.ObserverFunc(func(e rc.Event) {
		d.m.observeAdmission(e)
		d.reg.observe(e)
	})
	l := cfg.Listener
	d.ln, err = rc.Listen(ctx, l.Address, rc.ListenerConfig{
		Validator:           allow,
		HandshakeTimeout:    l.FirstMessageTimeout.D(),
		MaxPending:          l.MaxPending,
		MaxPendingPerSource: l.MaxPendingPerSource,
		Observer:            observer,
		Logger:              log.With("component", "listener"),
	})
	if err != nil {
		return err
	}
	d.broker, err = rc.NewBroker(d.ln, rc.BrokerConfig{
		HoldTime:         l.HoldTime.D(),
		MaxHeldPerServer: l.HoldPerServer,
		Observer:         observer,
		Logger:           log.With("component", "broker"),
	})
	if err != nil {
		return err
	}
	for uri, cc := range clients {
		cc.OnClientEvent = d.m.observeClientEvent
		clients[uri] = cc
	}
	src, err := rcsource.New(rcsource.Config{Sessions: d.broker, Clients: clients, Logger: log.With("component", "source")})
	if err != nil {
		return err
	}
	d.bridge, err = bridge.New(bridge.Config{
		Table:           table,
		Servers:         serverConfigs(cfg),
		Source:          src,
		Publisher:       d.bus,
		Presence:        d.bus,
		Commands:        d.bus,
		ResumeTimeout:   cfg.Client.SessionTimeout.D(),
		CommandTimeout:  cfg.Client.RequestTimeout.D(),
		ShutdownTimeout: d.o.shutdownTimeout / 2, // the rest is for draining the bus
		NoUnknownRoutes: !cfg.Bus.AnswerUnknownCommands,
		Logger:          log.With("component", "bridge"),
		Metrics:         d.m.bridgeMetrics(d.reg, time.Now),
	})
	if err != nil {
		return err
	}

	if cfg.HTTP.Address != "" {
		var lc net.ListenConfig
		if d.httpLn, err = lc.Listen(ctx, "tcp", cfg.HTTP.Address); err != nil {
			return fmt.Errorf("http: %w", err)
		}
		d.httpSrv = &http.Server{
			Handler:           newHandler(d.m, d.reg, d.checks(), time.Now, cfg.HTTP.PProf),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	return nil
}

// checks are the readiness conditions of /readyz.
func (d *daemon) checks() []check {
	cs := []check{{"listener", func() error {
		if d.stopping.Load() {
			return errors.New("shutting down")
		}
		return nil
	}}}
	if d.embedded != nil {
		cs = append(cs, check{"embedded_nats", d.embedded.Ready})
	}
	return append(cs, check{"bus", d.bus.Ready}, check{"bridge", func() error {
		select {
		case <-d.bridge.Done():
			return errors.New("stopped")
		default:
			return nil
		}
	}})
}

// serverConfigs are the bridge's per-server settings.
func serverConfigs(cfg *config.Config) []bridge.ServerConfig {
	out := make([]bridge.ServerConfig, len(cfg.Servers))
	for i, s := range cfg.Servers {
		out[i] = bridge.ServerConfig{
			URI:                     s.URI,
			PublishingInterval:      s.PublishingInterval.D(),
			MaxItemsPerSubscription: s.MaxItemsPerSubscription,
			CommandRate:             s.CommandRate,
			CommandBurst:            s.CommandBurst,
		}
	}
	return out
}

// publishedItems counts the items of a server that publish data.
func publishedItems(table *mapping.Table, uri string) int {
	n := 0
	for _, it := range table.For(uri) {
		if it.Route != "" {
			n++
		}
	}
	return n
}

func (d *daemon) addrs() addrs {
	a := addrs{Listener: d.ln.Addr().String(), Bus: natsURLs(d.cfg.Bus)}
	if d.embedded != nil {
		a.Bus = d.embedded.ClientURL()
	}
	if d.cfg.Bus.Kind == config.BusMQTT {
		a.Bus = strings.Join(d.cfg.Bus.MQTT.Brokers, ",")
	}
	if d.httpLn != nil {
		a.HTTP = d.httpLn.Addr().String()
	}
	return a
}

// serve runs the parts' goroutines until ctx is done or one of them fails,
// then shuts down.
func (d *daemon) serve(ctx context.Context) error {
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return d.bridge.Run(gctx) })
	g.Go(func() error {
		err := d.broker.Run(gctx)
		if err != nil && d.stopping.Load() {
			return nil
		}
		return err
	})
	g.Go(func() error { return d.reg.run(gctx) })
	if d.httpSrv != nil {
		g.Go(func() error {
			if err := d.httpSrv.Serve(d.httpLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
	}
	a := d.addrs()
	d.log.Info("rcbridge running", "version", d.o.version, "listener", a.Listener, "http", a.HTTP,
		"bus", d.cfg.Bus.Kind.String(), "bus_url", a.Bus, "servers", len(d.cfg.Servers))
	if d.o.started != nil {
		d.o.started(a)
	}

	var cause error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down", "deadline", d.o.shutdownTimeout)
	case <-gctx.Done():
		cause = context.Cause(gctx)
		d.log.Error("a part of the daemon failed; shutting down", "err", cause)
	}
	deadline, cancel := context.WithTimeout(context.Background(), d.o.shutdownTimeout)
	defer cancel()
	err := d.shutdown(deadline, stopRun, g)
	if cause != nil && !errors.Is(cause, context.Canceled) {
		return errors.Join(cause, err)
	}
	return err
}

// shutdown stops the parts in order, gracefully until deadline is done,
// then forcefully: stop admitting, stop the bridge (it closes the sessions
// and publishes every server offline) and the broker (held sockets are
// refused with Bad_TcpServerTooBusy), drain the bus, stop the embedded
// NATS server, stop HTTP.
func (d *daemon) shutdown(deadline context.Context, stopRun context.CancelFunc, g *errgroup.Group) error {
	d.stopping.Store(true)
	began := time.Now()
	_ = d.ln.Close()
	stopRun()
	select {
	case <-d.bridge.Done():
	case <-deadline.Done():
	}
	waited := make(chan error, 1)
	go func() { waited <- g.Wait() }()
	d.closeAll(deadline)
	var err error
	select {
	case err = <-waited:
	case <-deadline.Done():
	}
	if deadline.Err() != nil {
		return errors.Join(err, fmt.Errorf("%w (after %s)", errForcedShutdown, d.o.shutdownTimeout))
	}
	d.log.Info("stopped", "took", time.Since(began).Round(time.Millisecond))
	return err
}

// closeAll closes every part that exists, in shutdown order, within ctx;
// past it, what is left is closed hard.
func (d *daemon) closeAll(ctx context.Context) {
	if d.ln != nil {
		_ = d.ln.Close()
	}
	if d.bus != nil {
		if err := d.bus.Close(ctx); err != nil {
			d.log.Warn("bus", "err", err)
		}
	}
	if d.embedded != nil {
		if err := d.embedded.Close(ctx); err != nil {
			d.log.Warn("embedded NATS", "err", err)
		}
	}
	if d.httpSrv != nil {
		if err := d.httpSrv.Shutdown(ctx); err != nil {
			_ = d.httpSrv.Close()
		}
	} else if d.httpLn != nil {
		_ = d.httpLn.Close()
	}
}
