package rc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"
)

// testWait bounds every wait in the listener tests. It is a safety net
// against hangs, not a performance assertion.
const testWait = 10 * time.Second

// testURI and testEndpoint form the ReverseHello of the "legitimate" server.
const (
	testURI      = "urn:rcbridge:test:server"
	testEndpoint = "opc.tcp://plc-1:4840"
)

func testAllowList(t testing.TB) *AllowList {
	t.Helper()
	a, err := NewAllowList(testURI, "urn:rcbridge:test:other")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startListener listens on a free loopback port with cfg (Validator
// defaulting to testAllowList) and closes the listener at cleanup.
func startListener(t testing.TB, cfg ListenerConfig) *Listener {
	t.Helper()
	if cfg.Validator == nil {
		cfg.Validator = testAllowList(t)
	}
	l, err := Listen(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// dialFrom connects to l from the loopback address src ("" = 127.0.0.1)
// and closes the socket at cleanup.
func dialFrom(t testing.TB, l *Listener, src string) *net.TCPConn {
	t.Helper()
	c, err := dialFromErr(l, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dialFromErr(l *Listener, src string) (*net.TCPConn, error) {
	if src == "" {
		src = "127.0.0.1"
	}
	d := net.Dialer{Timeout: testWait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("dial from %s: %w", src, err)
	}
	return c.(*net.TCPConn), nil
}

// sendHello writes the ReverseHello of h to c.
func sendHello(t testing.TB, c net.Conn, h Hello) {
	t.Helper()
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write RHE: %v", err)
	}
}

// decodeErrorFrame decodes an ERR frame with gopcua's decoder, independent
// of ours.
func decodeErrorFrame(b []byte) (ua.StatusCode, string, error) {
	var h uacp.Header
	n, err := h.Decode(b)
	if err != nil {
		return 0, "", fmt.Errorf("ERR header %q: %w", b, err)
	}
	if h.MessageType != "ERR" || h.ChunkType != 'F' || int(h.MessageSize) != len(b) {
		return 0, "", fmt.Errorf("not one ERR frame: %+v, %d bytes: %q", h, len(b), b)
	}
	var e uacp.Error
	if _, err := e.Decode(b[n:]); err != nil {
		return 0, "", fmt.Errorf("ERR body %q: %w", b, err)
	}
	return ua.StatusCode(e.ErrorCode), e.Reason, nil
}

// readErrorFrame reads everything until the listener closes c and decodes
// it as one ERR frame.
func readErrorFrame(t testing.TB, c net.Conn) (ua.StatusCode, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading ERR frame (got %q): %v", b, err)
	}
	code, reason, err := decodeErrorFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	return code, reason
}

// expectError reads the ERR frame from c and checks its status code.
func expectError(t testing.TB, c net.Conn, want ua.StatusCode) string {
	t.Helper()
	code, reason := readErrorFrame(t, c)
	if code != want {
		t.Fatalf("ERR status %v (%q), want %v", code, reason, want)
	}
	return reason
}

// expectClosedSilently checks that the listener closes c without sending
// anything.
func expectClosedSilently(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	b, err := io.ReadAll(c)
	if err != nil || len(b) != 0 {
		t.Fatalf("want a silent close, got %q, %v", b, err)
	}
}

// expectOpen checks that c is still open: nothing to read within a moment.
func expectOpen(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || !isTimeoutErr(err) {
		t.Fatalf("socket from %v should still be pending: read %d, %v", c.LocalAddr(), n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// accept calls l.Accept with the test deadline.
func accept(t testing.TB, l *Listener) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	s, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { _ = s.Conn.Close() })
	return s
}

// pendingStates returns the number of pending sockets per state.
func (l *Listener) pendingStates() map[connState]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[connState]int{}
	for _, list := range l.pool.bySource {
		for _, c := range list {
			out[c.state]++
		}
	}
	return out
}

func (l *Listener) poolTotal() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pool.total
}

// waitPending waits until the listener holds exactly n pending sockets in
// state. Dial returns once the kernel accepted the connection, before the
// accept loop has seen it, hence the wait.
func waitPending(t testing.TB, l *Listener, state connState, n int) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for {
		got := l.pendingStates()[state]
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending sockets in state %d, want %d (all states %v, total %d)", got, state, n, l.pendingStates(), l.poolTotal())
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder is an Observer that records events.
type recorder struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// matching returns the recorded events of kind k.
func (r *recorder) matching(k EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// wait waits for at least n events of kind k and returns them all.
func (r *recorder) wait(t testing.TB, k EventKind, n int) []Event {
	t.Helper()
	timeout := time.After(testWait)
	for {
		if got := r.matching(k); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-timeout:
			t.Fatalf("%d %v events, want %d; all: %v", len(r.matching(k)), k, n, r.kinds())
		}
	}
}

func (r *recorder) kinds() map[EventKind]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[EventKind]int{}
	for _, e := range r.events {
		out[e.Kind]++
	}
	return out
}

// needFDs makes sure the process may open n file descriptors, raising the
// soft limit up to the hard one if needed; it fails the test otherwise.
func needFDs(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("need %d file descriptors, hard limit is %d (raise it: ulimit -Hn)", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit to %d: %v", n, err)
	}
}
