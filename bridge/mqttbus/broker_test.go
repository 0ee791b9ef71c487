package mqttbus

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

// broker is an embedded mochi-mqtt server that can be restarted on the
// same port. It keeps no state across a restart (no persistence hook), like
// a broker that lost its disk: retained messages and sessions are gone.
type broker struct {
	tb     testing.TB
	tls    *tls.Config  // nil: plain TCP
	ledger *auth.Ledger // nil: allow all
	mu     sync.Mutex
	srv    *mochi.Server
	port   int
	inline map[int]inlineSub // re-installed before every start
	nextID int
}

type inlineSub struct {
	filter string
	fn     mochi.InlineSubFn
}

// startBroker starts a broker on a free 127.0.0.1 port, stopped at test
// cleanup.
func startBroker(tb testing.TB) *broker { return startBrokerWith(tb, nil, nil) }

// startBrokerWith starts a broker with a TLS listener and/or an
// authentication ledger.
func startBrokerWith(tb testing.TB, tlsCfg *tls.Config, ledger *auth.Ledger) *broker {
	tb.Helper()
	b := &broker{tb: tb, tls: tlsCfg, ledger: ledger, inline: make(map[int]inlineSub)}
	b.start()
	tb.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.tb.Helper()
	for try := 0; ; try++ {
		srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
		var err error
		if b.ledger != nil {
			err = srv.AddHook(new(auth.Hook), &auth.Options{Ledger: b.ledger})
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
		l := listeners.NewTCP(listeners.Config{ID: "t", Address: addr, TLSConfig: b.tls})
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

func (b *broker) stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		start := time.Now()
		_ = srv.Close()
		if d := time.Since(start); d > time.Second {
			b.tb.Logf("DEBUG mochi Close took %s", d)
		}
	}
}

func (b *broker) restart(whileDown func()) {
	b.stop()
	if whileDown != nil {
		whileDown()
	}
	b.start()
}

// subscribe adds an in-process subscription that survives restarts: it is
// installed before the broker accepts connections, so it misses nothing
// the broker accepts.
func (b *broker) subscribe(filter string, fn func(topic string, payload []byte)) {
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

func (b *broker) url() string {
	scheme := "tcp"
	if b.tls != nil {
		scheme = "ssl"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, b.port)
}
