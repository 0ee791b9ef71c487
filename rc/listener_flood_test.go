package rc

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// floodSources is how many loopback addresses the silent sockets come from
// (127.0.1.1 ... 127.0.1.125), DefaultMaxPendingPerSource each for 1,000.
const floodSources = 125

// openSilent opens n sockets to l that never send a byte, spread round-robin
// over floodSources loopback addresses, and closes them at cleanup.
func openSilent(t testing.TB, l *Listener, n int) []*net.TCPConn {
	return openSlow(t, l, n, nil)
}

// openSlow is openSilent for sockets that send prefix and then nothing.
func openSlow(t testing.TB, l *Listener, n int, prefix []byte) []*net.TCPConn {
	t.Helper()
	conns := make([]*net.TCPConn, n)
	errs := make([]error, n)
	const dialers = 4
	var wg sync.WaitGroup
	for d := range dialers {
		wg.Go(func() {
			for i := d; i < n; i += dialers {
				conns[i], errs[i] = dialFromErr(l, floodSource(i))
				if errs[i] == nil && len(prefix) > 0 {
					_, errs[i] = conns[i].Write(prefix)
				}
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return conns
}

// floodSource returns the loopback address of the i-th flood socket.
func floodSource(i int) string { return fmt.Sprintf("127.0.1.%d", 1+i%floodSources) }

// TestListenerFlood holds 1,000 silent sockets open and checks that a
// legitimate server is still admitted. The first-message deadline is a
// minute, far beyond the test's wait, so only the pool's eviction (default
// caps) or the per-socket goroutines (a pool as large as the flood) can let
// it in: one pool full of silent sockets never locks a server out.
func TestListenerFlood(t *testing.T) {
	const silent = 1000
	needFDs(t, 3*silent)
	tests := []struct {
		name       string
		maxPending int
	}{
		{"default caps, eviction", 0},
		{"every silent socket pending", 1024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			l := startListener(t, ListenerConfig{Observer: rec, HandshakeTimeout: time.Minute, MaxPending: tc.maxPending})
			openSilent(t, l, silent)
			pending := min(silent, l.cfg.MaxPending)
			waitPending(t, l, stateReading, pending)
			if evicted := silent - pending; evicted > 0 {
				rec.wait(t, EventEvicted, evicted)
			}

			legit := dialFrom(t, l, "127.0.0.1")
			sendHello(t, legit, Hello{ServerURI: testURI, EndpointURL: testEndpoint})
			s := accept(t, l)
			if s.Conn.RemoteAddr().String() != legit.LocalAddr().String() {
				t.Fatalf("admitted %v, want %v", s.Conn.RemoteAddr(), legit.LocalAddr())
			}
			if got := l.pendingStates()[stateReading]; got > l.cfg.MaxPending {
				t.Errorf("%d pending sockets, cap %d", got, l.cfg.MaxPending)
			}
			if n := len(rec.matching(EventRejected)); n != 0 {
				t.Errorf("%d sockets refused; with silent sockets to evict, none should be", n)
			}
		})
	}
}
