package mqtttest

import (
	"crypto/tls"
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
)

// BrokerOptions configures a Broker. The zero value is a plain TCP broker
// that admits every client.
type BrokerOptions struct {
	// TLS, when set, makes the listener speak TLS ("ssl://" URLs).
	TLS *tls.Config
	// Ledger, when set, authenticates and authorizes clients; nil allows all.
	Ledger *auth.Ledger
}

// Broker is an embedded mochi-mqtt server on 127.0.0.1 that can be
// restarted on the same port. It keeps no state across a restart (no
// persistence hook), like a broker that lost its disk: retained messages
// and sessions are gone. Subscriptions made with Subscribe are installed
// again before it accepts connections, so they miss nothing it accepted.
type Broker struct {
	tb     testing.TB
	opts   BrokerOptions
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

// StartBroker starts a broker on a free port; it stops at test cleanup.
func StartBroker(tb testing.TB, opts BrokerOptions) *Broker {
	tb.Helper()
	b := &Broker{tb: tb, opts: opts, inline: make(map[int]inlineSub)}
	b.Start()
	tb.Cleanup(b.Stop)
	return b
}

// Start starts the broker (again), on the port it had before.
func (b *Broker) Start() {
	b.tb.Helper()
	for try := 0; ; try++ {
		srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
		var err error
		if b.opts.Ledger != nil {
			err = srv.AddHook(new(auth.Hook), &auth.Options{Ledger: b.opts.Ledger})
		} else {
			err = srv.AddHook(new(auth.AllowHook), nil)
		}
		if err != nil {
			b.tb.Fatal(err)
		}
		b.mu.Lock()
		for id, s := range b.inline {
			if err := srv.Subscribe(s.filter, id, s.fn); err != nil {
				b.mu.Unlock()
				b.tb.Fatalf("inline subscribe %q: %v", s.filter, err)
			}
		}
		addr := "127.0.0.1:" + strconv.Itoa(b.port)
		b.mu.Unlock()
		l := listeners.NewTCP(listeners.Config{ID: "t", Address: addr, TLSConfig: b.opts.TLS})
		if err := srv.AddListener(l); err != nil {
			_ = srv.Close()
			if try == 40 {
				b.tb.Fatalf("mochi listen %s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond) // the old port is being released
			continue
		}
		if err := srv.Serve(); err != nil {
			b.tb.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Address())
		b.mu.Lock()
		b.srv = srv
		b.port, _ = strconv.Atoi(port)
		b.mu.Unlock()
		return
	}
}

// Stop stops the broker; Start brings it back.
func (b *Broker) Stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart stops the broker, runs whileDown (if not nil), and starts it again.
func (b *Broker) Restart(whileDown func()) {
	b.Stop()
	if whileDown != nil {
		whileDown()
	}
	b.Start()
}

// Subscribe records every message the broker accepts on filter, across
// restarts, until test cleanup. fn runs on a broker goroutine.
func (b *Broker) Subscribe(filter string, fn func(topic string, payload []byte)) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	s := inlineSub{filter: filter, fn: func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	}}
	b.inline[id] = s
	srv := b.srv
	b.mu.Unlock()
	if err := srv.Subscribe(filter, id, s.fn); err != nil {
		b.tb.Fatalf("inline subscribe %q: %v", filter, err)
	}
	b.tb.Cleanup(func() {
		b.mu.Lock()
		delete(b.inline, id)
		srv := b.srv
		b.mu.Unlock()
		if srv != nil {
			_ = srv.Unsubscribe(filter, id)
		}
	})
}

// URL returns the client URL: tcp:// or, with TLS, ssl://.
func (b *Broker) URL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	scheme := "tcp"
	if b.opts.TLS != nil {
		scheme = "ssl"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, b.port)
}
