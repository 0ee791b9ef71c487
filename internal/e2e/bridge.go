package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/mqttbus"
	"github.com/rcbridge/rcbridge/bridge/natsbus"
	"github.com/rcbridge/rcbridge/bridge/rcsource"
	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc"
)

// Logger writes warnings and errors into the test output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// StreamSubjects are the subjects of the test stream: the default data
// routes (<prefix>.<server>.<name>), the status routes and the events
// routes, but not the command routes (<data route>.set, ….call). A stream
// that captured those would answer every command request with its PubAck
// before the bridge could reply.
func StreamSubjects(prefix string) []string {
	return []string{prefix + ".*.*", prefix + ".status.*.events"}
}

// OpenNATSBus opens natsbus on url (JetStream into a stream "RCB" with
// StreamSubjects when js is set); it closes at test cleanup.
func OpenNATSBus(t testing.TB, url string, js bool, prefix string) bridge.Bus {
	t.Helper()
	opts := natsbus.Options{URLs: []string{url}, Logger: Logger(t), ReconnectWait: 20 * time.Millisecond}
	if js {
		opts.JetStream = &natsbus.JetStreamOptions{Stream: "RCB", Subjects: StreamSubjects(prefix)}
	}
	bus, err := natsbus.New(WithTimeout(t, 10*time.Second), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBus(t, bus) })
	return bus
}

// OpenMQTTBus opens mqttbus on url; it closes at test cleanup.
func OpenMQTTBus(t testing.TB, url string) bridge.Bus {
	t.Helper()
	bus, err := mqttbus.New(WithTimeout(t, 10*time.Second), mqttbus.Options{Brokers: []string{url},
		ClientID: fmt.Sprintf("bridge-%d", clientIDs.Add(1)), MaxReconnectInterval: 200 * time.Millisecond, Logger: Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBus(t, bus) })
	return bus
}

func closeBus(t testing.TB, bus bridge.Bus) {
	if err := bus.Close(WithTimeout(t, 10*time.Second)); err != nil {
		t.Errorf("bus Close: %v", err)
	}
}

// BridgeConfig describes a bridge wired as the daemon wires it.
type BridgeConfig struct {
	// Servers are the allow-listed servers (key and URI).
	Servers []mapping.Server
	// Syntax and Prefix of the routes; Rows are the mapping.
	Syntax mapping.Syntax
	Prefix string
	Rows   []mapping.Row
	// Bus carries data, presence and commands.
	Bus bridge.Bus
	// Client configures the sessions (None and anonymous when zero).
	Client rc.ClientConfig
	// Tune adjusts the bridge.Config before New.
	Tune func(*bridge.Config)
}

// Bridge is a running bridge: an rc.Listener with a Broker on a free
// loopback port, rcsource with one rc.Factory, the bridge on cfg.Bus.
type Bridge struct {
	*bridge.Bridge
	Listener *rc.Listener
	Table    *mapping.Table

	t      testing.TB
	cancel context.CancelFunc
	done   chan struct{}
}

// StartBridge starts a bridge; it stops at test cleanup (before the bus
// closes, as the daemon does it).
func StartBridge(t testing.TB, cfg BridgeConfig) *Bridge {
	t.Helper()
	log := Logger(t)
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{t: t, cancel: cancel, done: make(chan struct{})}
	uris := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		uris[i] = s.URI
	}
	allow, err := rc.NewAllowList(uris...)
	if err != nil {
		t.Fatal(err)
	}
	b.Listener, err = rc.Listen(ctx, "127.0.0.1:0", rc.ListenerConfig{Validator: allow, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// A spare socket must outlive a slow drop detection on a loaded machine.
	broker, err := rc.NewBroker(b.Listener, rc.BrokerConfig{HoldTime: time.Minute, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Client.Logger == nil {
		cfg.Client.Logger = log
	}
	src, err := rcsource.New(rcsource.Config{Sessions: broker, Default: &cfg.Client, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b.Table, err = mapping.New(mapping.Config{Syntax: cfg.Syntax, Prefix: cfg.Prefix, Servers: cfg.Servers, Rows: cfg.Rows})
	if err != nil {
		t.Fatal(err)
	}
	bc := bridge.Config{
		Table: b.Table, Source: src, Publisher: cfg.Bus, Presence: cfg.Bus, Commands: cfg.Bus,
		ResumeTimeout: 3 * time.Second, CommandTimeout: 5 * time.Second, MinRetryDelay: 20 * time.Millisecond,
		MaxRetryDelay: 200 * time.Millisecond, Logger: log,
	}
	if cfg.Tune != nil {
		cfg.Tune(&bc)
	}
	b.Bridge, err = bridge.New(bc)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = broker.Run(ctx) })
	wg.Go(func() {
		defer close(b.done)
		if err := b.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		b.Stop()
		b.Listener.Close()
		wg.Wait()
	})
	select {
	case <-b.CommandsReady():
	case <-time.After(10 * time.Second):
		t.Fatal("command routes not subscribed within 10 s")
	}
	return b
}

// Stop ends the bridge and waits for Run to return.
func (b *Bridge) Stop() {
	b.cancel()
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		b.t.Fatal("bridge did not stop within 20 s")
	}
}

// Addr is where servers dial in.
func (b *Bridge) Addr() string { return b.Listener.Addr().String() }

// Await waits until the server is in state st.
func (b *Bridge) Await(uri string, st bridge.PresenceState) {
	b.t.Helper()
	if err := b.AwaitState(WithTimeout(b.t, 30*time.Second), uri, st); err != nil {
		b.t.Fatal(err)
	}
}

// WaitFor polls cond until it holds, for up to 20 s: a wait with a
// deadline, not a timing assertion.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
