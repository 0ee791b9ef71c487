package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/mqttbus"
	"github.com/rcbridge/rcbridge/bridge/natsbus"
	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"github.com/rcbridge/rcbridge/mapping"
)

// selfKey names the bridge's own presence: its status route is
// "<prefix>.status.rcbridge" ("<prefix>/status/rcbridge" on MQTT).
const selfKey = "rcbridge"

// embeddedConnectTimeout bounds the first connection to the embedded NATS
// server, which is already running.
const embeddedConnectTimeout = 10 * time.Second

// busSetup is what openBus needs besides the configuration.
type busSetup struct {
	table       *mapping.Table
	embeddedURL string // the embedded NATS server's client URL, if any
	lookupEnv   func(string) (string, bool)
	metrics     bridge.BusMetrics
	log         *slog.Logger
}

// openBus connects the bus adapter of the configured kind: natsbus for
// "nats" and "embedded", mqttbus for "mqtt". It waits for the first
// connection up to the configured connect timeout.
func openBus(ctx context.Context, cfg *config.Config, s busSetup) (bridge.Bus, error) {
	self, err := selfPresence(cfg, s.table)
	if err != nil {
		return nil, err
	}
	log := s.log.With("component", "bus")
	if cfg.Bus.Kind == config.BusMQTT {
		o, err := mqttOptions(cfg, s.lookupEnv)
		if err != nil {
			return nil, err
		}
		o.Self, o.Logger, o.Metrics = self, log, s.metrics
		ctx, cancel := context.WithTimeout(ctx, cfg.Bus.MQTT.ConnectTimeout.D())
		defer cancel()
		bus, err := mqttbus.New(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("bus: MQTT %s: %w", strings.Join(o.Brokers, ","), err)
		}
		return bus, nil
	}
	o, timeout, err := natsOptionsFor(cfg, s)
	if err != nil {
		return nil, err
	}
	o.Self, o.Logger, o.Metrics = self, log, s.metrics
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bus, err := natsbus.New(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("bus: NATS %s: %w", strings.Join(o.URLs, ","), err)
	}
	return bus, nil
}

// selfPresence is the bridge's own status: online while connected,
// offline after a clean stop (and, on MQTT, as the last will).
func selfPresence(cfg *config.Config, table *mapping.Table) (*bridge.Presence, error) {
	syn := table.Syntax()
	route := syn.Join(table.Prefix(), "status", selfKey)
	for _, s := range table.Servers() {
		if r, _ := table.StatusRoute(s.URI); r == route {
			return nil, fmt.Errorf("servers: the key %q of %q gives the status route %q, which is the bridge's own: choose another key", s.Key, s.URI, route)
		}
	}
	return &bridge.Presence{Route: route, Key: selfKey, Server: cfg.Client.ApplicationURI}, nil
}

// natsOptionsFor maps the configuration to natsbus.Options and returns the
// timeout of the first connection.
func natsOptionsFor(cfg *config.Config, s busSetup) (natsbus.Options, time.Duration, error) {
	if cfg.Bus.Kind == config.BusEmbedded {
		o := natsbus.Options{URLs: []string{s.embeddedURL}, Name: "rcbridge"}
		o.JetStream = jetStreamOptions(cfg.Bus.Embedded.JetStream, s.table)
		return o, embeddedConnectTimeout, nil
	}
	n := cfg.Bus.NATS
	o := natsbus.Options{
		URLs:         n.URLs,
		Name:         n.Name,
		User:         n.User,
		NKeySeedFile: n.NKeySeedFile,
		CredsFile:    n.CredsFile,
		TLS:          n.TLS.Enabled,
		TLSCAFile:    n.TLS.CA,
		TLSCertFile:  n.TLS.Certificate,
		TLSKeyFile:   n.TLS.PrivateKey,
		FlushTimeout: n.PublishTimeout.D(),
		AckTimeout:   n.PublishTimeout.D(),
		JetStream:    jetStreamOptions(n.JetStream, s.table),
	}
	var errs []error
	if n.TLS.ServerName != "" {
		errs = append(errs, fmt.Errorf("bus.nats.tls.server_name %q: not supported by the NATS adapter; use a URL with that host name", n.TLS.ServerName))
	}
	if n.PasswordRef().IsSet() {
		pw, err := n.PasswordRef().Load(s.lookupEnv)
		if err != nil {
			errs = append(errs, fmt.Errorf("bus.nats.password: %w", err))
		}
		o.Password = pw.Value()
	}
	if n.TokenRef().IsSet() {
		tok, err := n.TokenRef().Load(s.lookupEnv)
		if err != nil {
			errs = append(errs, fmt.Errorf("bus.nats.token: %w", err))
		}
		o.Token = tok.Value()
	}
	return o, n.ConnectTimeout.D(), errors.Join(errs...)
}

// jetStreamOptions maps a [jetstream] section; nil when it is off.
func jetStreamOptions(js config.JetStream, table *mapping.Table) *natsbus.JetStreamOptions {
	if !js.Enabled {
		return nil
	}
	subjects := js.Subjects
	if subjects == nil {
		subjects = streamSubjects(table)
	}
	return &natsbus.JetStreamOptions{
		Stream:         js.Stream,
		Subjects:       subjects,
		Duplicates:     js.DuplicateWindow.D(),
		MaxAge:         js.MaxAge.D(),
		PresenceBucket: js.StatusBucket,
		PresenceTTL:    presenceTTL(js.StatusTTL.D()),
	}
}

// presenceTTL maps status_ttl to natsbus: 0 there means "for ever",
// which natsbus spells negative.
func presenceTTL(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// streamSubjects are the subjects a created stream captures: every data,
// status and events route, but no command route, nor the route on which
// the bridge refuses writes to a read-only row (a stream capturing a
// request subject would answer with its PubAck before the bridge could),
// nor a route the bridge's catch-all command filters match. Routes are
// generalized to one wildcard per token after
// the prefix ("rcbridge.*.*"); a shape that would also match a command
// route is listed literally instead.
func streamSubjects(table *mapping.Table) []string {
	syn := table.Syntax()
	var routes []string
	for _, s := range table.Servers() {
		status, _ := table.StatusRoute(s.URI)
		events, _ := table.EventsRoute(s.URI)
		routes = append(routes, status, events)
		for _, it := range table.For(s.URI) {
			if it.Route != "" {
				routes = append(routes, it.Route)
			}
		}
	}
	routes = append(routes, syn.Join(table.Prefix(), "status", selfKey))
	prefixTokens := len(strings.Split(table.Prefix(), "."))
	shape := func(route string) string {
		tokens := strings.Split(route, ".")
		if len(tokens) <= prefixTokens || !strings.HasPrefix(route, table.Prefix()+".") {
			return route // a custom route outside the prefix: literally
		}
		return table.Prefix() + strings.Repeat(".*", len(tokens)-prefixTokens)
	}
	commands := append(table.CommandRoutes(), table.CommandFilters()...)
	for r := range table.ReadOnlyRoutes() {
		// The bridge answers writes to read-only rows here.
		commands = append(commands, r)
	}
	// Sets, not list scans: 1,000 servers of 100 rows make 100,000 routes
	// and as many command routes.
	commandShapes := make(map[string]bool)
	for _, c := range commands {
		commandShapes[shape(c)] = true
	}
	var out []string
	seen := make(map[string]bool)
	for _, r := range routes {
		sh := shape(r)
		if commandShapes[sh] {
			sh = r
		}
		if !seen[sh] {
			seen[sh] = true
			out = append(out, sh)
		}
	}
	return out
}

// mqttOptions maps the configuration to mqttbus.Options.
func mqttOptions(cfg *config.Config, lookupEnv func(string) (string, bool)) (mqttbus.Options, error) {
	m := cfg.Bus.MQTT
	o := mqttbus.Options{
		Brokers:        m.Brokers,
		ClientID:       m.ClientID,
		Username:       m.Username,
		TLS:            m.TLS.Enabled,
		TLSCAFile:      m.TLS.CA,
		TLSCertFile:    m.TLS.Certificate,
		TLSKeyFile:     m.TLS.PrivateKey,
		KeepAlive:      m.KeepAlive.D(),
		ConnectTimeout: m.ConnectTimeout.D(),
	}
	var errs []error
	if m.TLS.ServerName != "" {
		errs = append(errs, fmt.Errorf("bus.mqtt.tls.server_name %q: not supported by the MQTT adapter; use a broker URL with that host name", m.TLS.ServerName))
	}
	if !m.PersistentSession {
		errs = append(errs, errors.New("bus.mqtt.persistent_session = false: the MQTT adapter always keeps a persistent session (QoS 1/2 messages in flight survive reconnects)"))
	}
	if m.PasswordRef().IsSet() {
		pw, err := m.PasswordRef().Load(lookupEnv)
		if err != nil {
			errs = append(errs, fmt.Errorf("bus.mqtt.password: %w", err))
		}
		o.Password = pw.Value()
	}
	return o, errors.Join(errs...)
}
