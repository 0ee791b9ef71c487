package rc

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

const otherURI = "urn:rcbridge:test:other"

// brokerFixture runs a Broker on a fresh Listener until the test ends.
type brokerFixture struct {
	l      *Listener
	b      *Broker
	rec    *recorder
	cancel context.CancelFunc
	runErr chan error
}

func startBroker(t *testing.T, cfg BrokerConfig) *brokerFixture {
	t.Helper()
	f := &brokerFixture{rec: newRecorder(), runErr: make(chan error, 1)}
	f.l = startListener(t, ListenerConfig{})
	cfg.Observer = f.rec
	b, err := NewBroker(f.l, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.b = b
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.runErr <- b.Run(ctx) }()
	t.Cleanup(func() { f.stop(t) })
	deadline := time.Now().Add(testWait)
	for !b.running() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return f
}

func (b *Broker) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == brokerRunning
}

// stop cancels Run and returns its result (once; later calls return nil).
func (f *brokerFixture) stop(t *testing.T) error {
	t.Helper()
	f.cancel()
	select {
	case err := <-f.runErr:
		f.runErr <- nil
		return err
	case <-time.After(testWait):
		t.Fatal("Run did not return")
		return nil
	}
}

// connect dials the listener and sends a ReverseHello for uri.
func (f *brokerFixture) connect(t *testing.T, uri string) *net.TCPConn {
	t.Helper()
	c := dialFrom(t, f.l, "")
	sendHello(t, c, Hello{ServerURI: uri, EndpointURL: testEndpoint})
	return c
}

// next calls Next with the test deadline and checks the session's peer.
func (f *brokerFixture) next(t *testing.T, uri string, want *net.TCPConn) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	s, err := f.b.Next(ctx, uri)
	if err != nil {
		t.Fatalf("Next(%q): %v", uri, err)
	}
	t.Cleanup(func() { _ = s.Conn.Close() })
	if s.ServerURI != uri {
		t.Fatalf("Next(%q) returned a session of %q", uri, s.ServerURI)
	}
	if want != nil && s.Conn.RemoteAddr().String() != want.LocalAddr().String() {
		t.Fatalf("Next(%q) returned the socket of %v, want %v", uri, s.Conn.RemoteAddr(), want.LocalAddr())
	}
	return s
}

// held returns how many sessions the broker holds for uri.
func (b *Broker) heldCount(uri string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held[uri])
}

func waitHeld(t *testing.T, b *Broker, uri string, n int) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for b.heldCount(uri) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions held for %q, want %d", b.heldCount(uri), uri, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBrokerWaiter: Next waits for the next session of its server and
// ignores other servers' sessions.
func TestBrokerWaiter(t *testing.T) {
	f := startBroker(t, BrokerConfig{})
	got := make(chan *Session, 1)
	go func() {
		s, err := f.b.Next(context.Background(), testURI)
		if err != nil {
			t.Errorf("Next: %v", err)
		}
		got <- s
	}()
	waitWaiters(t, f.b, testURI, 1)
	f.connect(t, otherURI)
	waitHeld(t, f.b, otherURI, 1)
	c := f.connect(t, testURI)
	select {
	case s := <-got:
		defer s.Conn.Close()
		if s == nil || s.Conn.RemoteAddr().String() != c.LocalAddr().String() {
			t.Fatalf("Next got %+v, want the socket of %v", s, c.LocalAddr())
		}
	case <-time.After(testWait):
		t.Fatal("Next did not return")
	}
	f.next(t, otherURI, nil)
}

func waitWaiters(t *testing.T, b *Broker, uri string, n int) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for {
		b.mu.Lock()
		got := len(b.waiters[uri])
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters for %q, want %d", got, uri, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBrokerHoldCount: at most MaxHeldPerServer unclaimed sessions per
// server; a newer one pushes the oldest out with Bad_TcpServerTooBusy, and
// Next hands out the newest first.
func TestBrokerHoldCount(t *testing.T) {
	f := startBroker(t, BrokerConfig{MaxHeldPerServer: 2})
	c1 := f.connect(t, testURI)
	waitHeld(t, f.b, testURI, 1)
	c2 := f.connect(t, testURI)
	waitHeld(t, f.b, testURI, 2)
	c3 := f.connect(t, testURI)
	expectError(t, c1, ua.StatusBadTCPServerTooBusy)
	ev := f.rec.wait(t, EventDropped, 1)[0]
	if !errors.Is(ev.Err, ErrHoldFull) || ev.ServerURI != testURI || ev.Remote.String() != c1.LocalAddr().String() {
		t.Errorf("dropped event %+v", ev)
	}
	waitHeld(t, f.b, testURI, 2)
	f.next(t, testURI, c3)
	f.next(t, testURI, c2)
	expectOpen(t, c2)
	expectOpen(t, c3)
}

// TestBrokerHoldTime: an unclaimed session is closed with
// Bad_TcpServerTooBusy after HoldTime; Next then waits for a new one.
func TestBrokerHoldTime(t *testing.T) {
	f := startBroker(t, BrokerConfig{HoldTime: 200 * time.Millisecond})
	c := f.connect(t, testURI)
	waitHeld(t, f.b, testURI, 1)
	expectError(t, c, ua.StatusBadTCPServerTooBusy)
	ev := f.rec.wait(t, EventDropped, 1)[0]
	if !errors.Is(ev.Err, ErrHoldExpired) {
		t.Errorf("dropped event %+v", ev)
	}
	waitHeld(t, f.b, testURI, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if s, err := f.b.Next(ctx, testURI); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after expiry = %v, %v; want DeadlineExceeded", s, err)
	}
	waitWaiters(t, f.b, testURI, 0)
	// A later session is held again, for the full hold time.
	c2 := f.connect(t, testURI)
	f.next(t, testURI, c2)
}

// TestBrokerStop: when Run returns, held sessions are closed with
// Bad_TcpServerTooBusy and Next returns ErrBrokerClosed, also to callers
// already waiting.
func TestBrokerStop(t *testing.T) {
	f := startBroker(t, BrokerConfig{})
	c := f.connect(t, testURI)
	waitHeld(t, f.b, testURI, 1)
	waiting := make(chan error, 1)
	go func() {
		_, err := f.b.Next(context.Background(), otherURI)
		waiting <- err
	}()
	waitWaiters(t, f.b, otherURI, 1)

	if err := f.stop(t); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	expectError(t, c, ua.StatusBadTCPServerTooBusy)
	if err := <-waiting; !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("waiting Next: %v", err)
	}
	if _, err := f.b.Next(context.Background(), testURI); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Next after stop: %v", err)
	}
	if err := f.b.Run(context.Background()); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Run after stop: %v", err)
	}
	ev := f.rec.wait(t, EventDropped, 1)[0]
	if !errors.Is(ev.Err, ErrBrokerClosed) {
		t.Errorf("dropped event %+v", ev)
	}
}

func TestBrokerListenerClosed(t *testing.T) {
	f := startBroker(t, BrokerConfig{})
	if err := f.b.Run(context.Background()); !errors.Is(err, ErrBrokerRunning) {
		t.Errorf("second Run: %v", err)
	}
	_ = f.l.Close()
	select {
	case err := <-f.runErr:
		f.runErr <- nil
		if !errors.Is(err, ErrListenerClosed) {
			t.Errorf("Run returned %v, want ErrListenerClosed", err)
		}
	case <-time.After(testWait):
		t.Fatal("Run did not return after the listener closed")
	}
}

// TestBrokerNextCancel: a cancelled Next leaves no waiter behind, so the
// next session is held rather than handed to nobody.
func TestBrokerNextCancel(t *testing.T) {
	f := startBroker(t, BrokerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.b.Next(ctx, testURI)
		errc <- err
	}()
	waitWaiters(t, f.b, testURI, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next: %v", err)
	}
	waitWaiters(t, f.b, testURI, 0)
	c := f.connect(t, testURI)
	waitHeld(t, f.b, testURI, 1)
	f.next(t, testURI, c)
}

func TestBrokerConfig(t *testing.T) {
	l := startListener(t, ListenerConfig{})
	if _, err := NewBroker(l, BrokerConfig{HoldTime: -1, MaxHeldPerServer: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewBroker: %v", err)
	}
	if _, err := NewBroker(nil, BrokerConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewBroker(nil): %v", err)
	}
}
