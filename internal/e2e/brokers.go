// Package e2e holds what rcbridge's end-to-end tests share: embedded
// brokers that can be restarted (nats-server, mochi-mqtt), bus clients that
// act like the bridge's users (subscribe, send commands), and a recorder of
// the messages they see. It is for tests only.
package e2e

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded nats-server on a free loopback port that can be
// restarted on the same port with the same JetStream store.
type NATS struct {
	t    testing.TB
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server
}

// StartNATS starts a server, with JetStream when js is set; it stops at
// test cleanup.
func StartNATS(t testing.TB, js bool) *NATS {
	t.Helper()
	n := &NATS{t: t, opts: server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: js}}
	if js {
		n.opts.StoreDir = t.TempDir()
	}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// Start starts the server (again).
func (n *NATS) Start() {
	n.t.Helper()
	for try := 0; ; try++ {
		n.mu.Lock()
		opts := n.opts
		n.mu.Unlock()
		srv, err := server.NewServer(&opts)
		if err != nil {
			n.t.Fatalf("nats-server: %v", err)
		}
		go srv.Start()
		if srv.ReadyForConnections(10 * time.Second) {
			n.mu.Lock()
			n.srv = srv
			n.opts.Port = srv.Addr().(*net.TCPAddr).Port
			n.mu.Unlock()
			return
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		if try == 40 {
			n.t.Fatalf("nats-server did not start on port %d", opts.Port)
		}
		time.Sleep(50 * time.Millisecond) // the old port is being released
	}
}

// Stop stops the server.
func (n *NATS) Stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart stops the server, waits down, and starts it again.
func (n *NATS) Restart(down time.Duration) {
	n.Stop()
	time.Sleep(down)
	n.Start()
}

// URL returns the client URL.
func (n *NATS) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
}

// Mochi is an embedded mochi-mqtt broker on a free loopback port that can
// be restarted on the same port. It keeps no state across a restart, like a
// broker that lost its disk; Watch subscriptions are installed again before
// it accepts connections, so they miss nothing it accepted.
type Mochi struct {
	t      testing.TB
	mu     sync.Mutex
	srv    *mochi.Server
	port   int
	inline map[int]inlineSub
	nextID int
}

type inlineSub struct {
	filter string
	fn     mochi.InlineSubFn
}

// StartMochi starts a broker; it stops at test cleanup.
func StartMochi(t testing.TB) *Mochi {
	t.Helper()
	m := &Mochi{t: t, inline: make(map[int]inlineSub)}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start starts the broker (again).
func (m *Mochi) Start() {
	m.t.Helper()
	for try := 0; ; try++ {
		srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			m.t.Fatal(err)
		}
		m.mu.Lock()
		for id, s := range m.inline {
			if err := srv.Subscribe(s.filter, id, s.fn); err != nil {
				m.mu.Unlock()
				m.t.Fatalf("inline subscribe %q: %v", s.filter, err)
			}
		}
		addr := "127.0.0.1:" + strconv.Itoa(m.port)
		m.mu.Unlock()
		l := listeners.NewTCP(listeners.Config{ID: "t", Address: addr})
		if err := srv.AddListener(l); err != nil {
			_ = srv.Close()
			if try == 40 {
				m.t.Fatalf("mochi listen %s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err := srv.Serve(); err != nil {
			m.t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Address())
		m.mu.Lock()
		m.srv = srv
		m.port, _ = strconv.Atoi(port)
		m.mu.Unlock()
		return
	}
}

// Stop stops the broker.
func (m *Mochi) Stop() {
	m.mu.Lock()
	srv := m.srv
	m.srv = nil
	m.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart stops the broker, waits down, and starts it again.
func (m *Mochi) Restart(down time.Duration) {
	m.Stop()
	time.Sleep(down)
	m.Start()
}

// URL returns the client URL.
func (m *Mochi) URL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("tcp://127.0.0.1:%d", m.port)
}

// Watch records every message the broker accepts on filter, across
// restarts, until test cleanup.
func (m *Mochi) Watch(t testing.TB, filter string) *Recorder {
	t.Helper()
	rec := NewRecorder()
	m.mu.Lock()
	m.nextID++
	id := m.nextID
	s := inlineSub{filter: filter, fn: func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		rec.Add(pk.TopicName, pk.Payload)
	}}
	m.inline[id] = s
	srv := m.srv
	m.mu.Unlock()
	if err := srv.Subscribe(filter, id, s.fn); err != nil {
		t.Fatalf("inline subscribe %q: %v", filter, err)
	}
	t.Cleanup(func() {
		m.mu.Lock()
		delete(m.inline, id)
		srv := m.srv
		m.mu.Unlock()
		if srv != nil {
			_ = srv.Unsubscribe(filter, id)
		}
	})
	return rec
}
