package natsbus

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// broker is an embedded nats-server that can be restarted on the same port
// with the same JetStream store.
type broker struct {
	tb        testing.TB
	jetstream bool
	mod       func(*server.Options) // extra settings (auth, TLS)
	scheme    string
	dir       string
	port      int
	mu        sync.Mutex
	srv       *server.Server
}

// startBroker starts an embedded server on a free 127.0.0.1 port; it is
// shut down at test cleanup.
func startBroker(tb testing.TB, jetstream bool) *broker {
	tb.Helper()
	return startBrokerWith(tb, jetstream, nil)
}

// startBrokerWith is startBroker with extra server settings.
func startBrokerWith(tb testing.TB, jetstream bool, mod func(*server.Options)) *broker {
	tb.Helper()
	b := &broker{tb: tb, jetstream: jetstream, port: -1, mod: mod, scheme: "nats"}
	if jetstream {
		b.dir = tb.TempDir()
	}
	b.start()
	tb.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.tb.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      b.port,
		NoLog:     true,
		NoSigs:    true,
		JetStream: b.jetstream,
		StoreDir:  b.dir,
	}
	if b.mod != nil {
		b.mod(opts)
	}
	var srv *server.Server
	var err error
	// The old listener's port can take a moment to be free again.
	for try := 0; ; try++ {
		srv, err = server.NewServer(opts)
		if err != nil {
			b.tb.Fatalf("nats-server: %v", err)
		}
		go srv.Start()
		if srv.ReadyForConnections(10 * time.Second) {
			break
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		if try == 20 {
			b.tb.Fatalf("nats-server did not start on port %d", b.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.mu.Lock()
	b.srv = srv
	b.port = srv.Addr().(*net.TCPAddr).Port
	b.mu.Unlock()
}

func (b *broker) stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// restart stops the server, runs whileDown, and starts it again.
func (b *broker) restart(whileDown func()) {
	b.stop()
	if whileDown != nil {
		whileDown()
	}
	b.start()
}

func (b *broker) url() string { return fmt.Sprintf("%s://127.0.0.1:%d", b.scheme, b.port) }
