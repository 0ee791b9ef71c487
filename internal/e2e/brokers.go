// Package e2e holds what rcbridge's end-to-end tests share: embedded
// brokers that can be restarted (nats-server, mochi-mqtt), bus clients that
// act like the bridge's users (subscribe, send commands), and a recorder of
// the messages they see. It is for tests only.
package e2e

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/rcbridge/rcbridge/bridge/mqttbus/mqtttest"
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

// Mochi is a restartable embedded mochi-mqtt broker on a free loopback port
// (mqtttest.Broker) with the helpers the end-to-end tests use.
type Mochi struct{ *mqtttest.Broker }

// StartMochi starts a broker; it stops at test cleanup.
func StartMochi(t testing.TB) *Mochi {
	t.Helper()
	return &Mochi{mqtttest.StartBroker(t, mqtttest.BrokerOptions{})}
}

// Restart stops the broker, waits down, and starts it again.
func (m *Mochi) Restart(down time.Duration) {
	m.Broker.Restart(func() { time.Sleep(down) })
}
