package rc

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

func TestListenerAdmits(t *testing.T) {
	rec := newRecorder()
	l := startListener(t, ListenerConfig{Observer: rec})
	c := dialFrom(t, l, "")
	// The bytes after the RHE belong to the session: the listener must
	// leave them in the socket.
	after := []byte("HELF\x1c\x00\x00\x00 first session bytes")
	b, _ := Hello{ServerURI: testURI, EndpointURL: testEndpoint}.Encode()
	if _, err := c.Write(append(b, after...)); err != nil {
		t.Fatal(err)
	}

	s := accept(t, l)
	if s.ServerURI != testURI || s.EndpointURL != testEndpoint || s.Hello() != (Hello{testURI, testEndpoint}) {
		t.Fatalf("session %+v", s)
	}
	tc, ok := s.Conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("Session.Conn is %T, want *net.TCPConn", s.Conn)
	}
	if got := s.Conn.RemoteAddr().String(); got != c.LocalAddr().String() {
		t.Errorf("session remote %s, dialer local %s", got, c.LocalAddr())
	}
	if nodelay := tcpNoDelay(t, tc); !nodelay {
		t.Error("TCP_NODELAY is off on the admitted socket")
	}
	_ = s.Conn.SetReadDeadline(time.Now().Add(testWait))
	got := make([]byte, len(after))
	if _, err := io.ReadFull(s.Conn, got); err != nil || string(got) != string(after) {
		t.Fatalf("session read %q, %v; want %q", got, err, after)
	}
	// The deadline of the handshake no longer applies.
	var zero time.Time
	_ = s.Conn.SetReadDeadline(zero)

	// Both ends still talk to each other.
	if _, err := s.Conn.Write([]byte("ACK")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(testWait))
	if _, err := io.ReadFull(c, got[:3]); err != nil || string(got[:3]) != "ACK" {
		t.Fatalf("server side read %q, %v", got[:3], err)
	}

	rec.wait(t, EventAccepted, 1)
	recv := rec.wait(t, EventReceived, 1)[0]
	if recv.ServerURI != testURI || recv.Remote.String() != c.LocalAddr().String() {
		t.Errorf("received event %+v", recv)
	}
	if k := rec.kinds(); len(k) != 2 {
		t.Errorf("events %v, want only received and accepted", k)
	}
	if n := len(l.pendingStates()); n != 0 {
		t.Errorf("pool still holds %v", l.pendingStates())
	}
}

func tcpNoDelay(t *testing.T, c *net.TCPConn) bool {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}); err != nil || serr != nil {
		t.Fatalf("getsockopt: %v %v", err, serr)
	}
	return v != 0
}

// TestListenerRejects sends bad first messages over real sockets and reads
// back the ERR frame the listener answers with.
func TestListenerRejects(t *testing.T) {
	huge := rawFrame("RHEF", math.MaxUint32)
	tests := []rejectCase{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: plc\r\n\r\n"), ua.StatusBadTCPMessageTypeInvalid, EventMalformed, ErrMessageType},
		{"Hello instead of ReverseHello", rawFrame("HELF", 32, str("urn:"), str("opc.tcp://h:")), ua.StatusBadTCPMessageTypeInvalid, EventMalformed, ErrMessageType},
		{"intermediate chunk", rawFrame("RHEC", 32, str("urn:"), str("opc.tcp://h:")), ua.StatusBadTCPMessageTypeInvalid, EventMalformed, ErrChunkType},
		{"declared size 4 GiB", huge, ua.StatusBadTCPMessageTooLarge, EventMalformed, ErrHelloTooLarge},
		{"trailing bytes", fitFrame(str(testURI), str(testEndpoint), []byte{0}), ua.StatusBadTCPMessageTypeInvalid, EventMalformed, ErrTrailingBytes},
		{"ServerUri over 4096 bytes", fitFrame(str(strings.Repeat("u", 4097)), str(testEndpoint)), ua.StatusBadTCPEndpointURLInvalid, EventMalformed, ErrStringTooLong},
		{"unknown server", fitFrame(str("urn:evil"), str(testEndpoint)), ua.StatusBadTCPEndpointURLInvalid, EventRejected, ErrNotAllowed},
		{"server URI differs in case", fitFrame(str(strings.ToUpper(testURI)), str(testEndpoint)), ua.StatusBadTCPEndpointURLInvalid, EventRejected, ErrNotAllowed},
		{"http endpoint", fitFrame(str(testURI), str("http://plc-1:4840")), ua.StatusBadTCPEndpointURLInvalid, EventRejected, ErrEndpointURL},
		{"empty endpoint", fitFrame(str(testURI), str("")), ua.StatusBadTCPEndpointURLInvalid, EventRejected, ErrEndpointURL},
		{"endpoint without port", fitFrame(str(testURI), str("opc.tcp://plc-1")), ua.StatusBadTCPEndpointURLInvalid, EventRejected, ErrEndpointURL},
	}
	rec := newRecorder()
	// A long deadline: every rejection must come from the frame, not the
	// clock.
	l := startListener(t, ListenerConfig{Observer: rec, HandshakeTimeout: time.Minute})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, l, "")
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			reason := expectError(t, c, tc.status)
			if reason == "" {
				t.Error("ERR frame without a reason")
			}
			ev := rec.wait(t, tc.kind, 1+countKind(tests[:i], tc.kind))
			last := ev[len(ev)-1]
			if !errors.Is(last.Err, tc.cause) || last.Status != tc.status {
				t.Errorf("event %+v, want cause %v and status %v", last, tc.cause, tc.status)
			}
			if tc.kind == EventRejected {
				var he *HelloError
				if !errors.As(last.Err, &he) || he.ServerURI == "" && tc.cause == ErrNotAllowed {
					t.Errorf("rejection %v is not a *HelloError with the ServerUri", last.Err)
				}
			}
		})
	}
	if n := len(rec.matching(EventAccepted)); n != 0 {
		t.Errorf("%d sessions admitted", n)
	}
}

type rejectCase struct {
	name   string
	send   []byte
	status ua.StatusCode
	kind   EventKind
	cause  error
}

func countKind(tests []rejectCase, k EventKind) int {
	n := 0
	for _, tc := range tests {
		if tc.kind == k {
			n++
		}
	}
	return n
}

// TestListenerDeadline: a socket that sends part of a frame, or nothing,
// and then stays silent is closed at the first-message deadline, without an
// ERR frame, while a legitimate server is admitted meanwhile.
func TestListenerDeadline(t *testing.T) {
	rec := newRecorder()
	l := startListener(t, ListenerConfig{Observer: rec, HandshakeTimeout: 300 * time.Millisecond})
	truncated := dialFrom(t, l, "")
	frame, _ := Hello{ServerURI: testURI, EndpointURL: testEndpoint}.Encode()
	if _, err := truncated.Write(frame[:20]); err != nil {
		t.Fatal(err)
	}
	silent := dialFrom(t, l, "")
	waitPending(t, l, stateReading, 2)

	good := dialFrom(t, l, "")
	sendHello(t, good, Hello{ServerURI: testURI, EndpointURL: testEndpoint})
	accept(t, l)

	start := time.Now()
	expectClosedSilently(t, truncated)
	expectClosedSilently(t, silent)
	if waited := time.Since(start); waited > testWait/2 {
		t.Errorf("closed after %v", waited)
	}
	for _, e := range rec.wait(t, EventTimedOut, 2) {
		if !errors.Is(e.Err, ErrHandshakeTimeout) || !errors.Is(e.Err, os.ErrDeadlineExceeded) || e.Status != ua.StatusOK {
			t.Errorf("timed-out event %+v", e)
		}
	}
	waitPending(t, l, stateReading, 0)
}

// TestListenerPeerCloses: a peer that connects and closes without a byte is
// reported as malformed and gets no ERR frame.
func TestListenerPeerCloses(t *testing.T) {
	rec := newRecorder()
	l := startListener(t, ListenerConfig{Observer: rec})
	c := dialFrom(t, l, "")
	_ = c.Close()
	ev := rec.wait(t, EventMalformed, 1)[0]
	if !errors.Is(ev.Err, io.EOF) || ev.Status != ua.StatusOK {
		t.Errorf("event %+v, want EOF without status", ev)
	}
	waitPending(t, l, stateReading, 0)
}

// TestListenerPerSourceCap: at its cap, a source's oldest silent socket
// makes room for its newest one; other sources are unaffected.
func TestListenerPerSourceCap(t *testing.T) {
	rec := newRecorder()
	l := startListener(t, ListenerConfig{Observer: rec, MaxPendingPerSource: 3, HandshakeTimeout: time.Minute})
	var socks []*net.TCPConn
	for i := range 3 {
		socks = append(socks, dialFrom(t, l, "127.0.0.1"))
		waitPending(t, l, stateReading, i+1)
	}
	other := dialFrom(t, l, "127.0.0.2")
	waitPending(t, l, stateReading, 4)

	newest := dialFrom(t, l, "127.0.0.1")
	expectError(t, socks[0], ua.StatusBadTCPServerTooBusy)
	ev := rec.wait(t, EventEvicted, 1)[0]
	if !errors.Is(ev.Err, ErrTooBusy) || ev.Remote.String() != socks[0].LocalAddr().String() {
		t.Errorf("evicted event %+v, want the oldest socket %v", ev, socks[0].LocalAddr())
	}
	for _, c := range []net.Conn{socks[1], socks[2], other} {
		expectOpen(t, c)
	}
	waitPending(t, l, stateReading, 4)

	// The newest socket is a legitimate server: admitted.
	sendHello(t, newest, Hello{ServerURI: testURI, EndpointURL: testEndpoint})
	if s := accept(t, l); s.Conn.RemoteAddr().String() != newest.LocalAddr().String() {
		t.Errorf("admitted %v, want %v", s.Conn.RemoteAddr(), newest.LocalAddr())
	}
}

// TestListenerTotalCap: when the pool is full, the victim is the oldest
// socket of the source with the most pending sockets, not the oldest socket
// overall.
func TestListenerTotalCap(t *testing.T) {
	rec := newRecorder()
	l := startListener(t, ListenerConfig{Observer: rec, MaxPending: 4, HandshakeTimeout: time.Minute})
	lone := dialFrom(t, l, "127.0.0.2") // oldest overall, alone on its source
	waitPending(t, l, stateReading, 1)
	var flood []*net.TCPConn
	for i := range 3 {
		flood = append(flood, dialFrom(t, l, "127.0.0.3"))
		waitPending(t, l, stateReading, i+2)
	}
	newcomer := dialFrom(t, l, "127.0.0.4")
	expectError(t, flood[0], ua.StatusBadTCPServerTooBusy)
	rec.wait(t, EventEvicted, 1)
	for _, c := range []net.Conn{lone, flood[1], flood[2], newcomer} {
		expectOpen(t, c)
	}
	waitPending(t, l, stateReading, 4)
}

// TestListenerRefusesWhenNothingEvictable: sockets that delivered a
// ReverseHello are never evicted; when they fill the pool, a newcomer is
// refused with Bad_TcpServerTooBusy, and admitted sessions nobody accepts
// are dropped with it after the deadline.
func TestListenerRefusesWhenNothingEvictable(t *testing.T) {
	rec := newRecorder()
	l := startListener(t, ListenerConfig{Observer: rec, MaxPending: 2, AcceptQueue: 1, HandshakeTimeout: 500 * time.Millisecond})
	queued := dialFrom(t, l, "")
	sendHello(t, queued, Hello{ServerURI: testURI, EndpointURL: testEndpoint})
	rec.wait(t, EventAccepted, 1)
	var waiting []*net.TCPConn
	for range 2 {
		c := dialFrom(t, l, "")
		sendHello(t, c, Hello{ServerURI: testURI, EndpointURL: testEndpoint})
		waiting = append(waiting, c)
	}
	waitPending(t, l, stateAdmitting, 2)

	refused := dialFrom(t, l, "127.0.0.2")
	expectError(t, refused, ua.StatusBadTCPServerTooBusy)
	rej := rec.wait(t, EventRejected, 1)[0]
	if !errors.Is(rej.Err, ErrTooBusy) {
		t.Errorf("rejected event %+v", rej)
	}
	for _, c := range waiting {
		expectError(t, c, ua.StatusBadTCPServerTooBusy)
	}
	for _, e := range rec.wait(t, EventDropped, 2) {
		if !errors.Is(e.Err, ErrAcceptQueueFull) || e.ServerURI != testURI {
			t.Errorf("dropped event %+v", e)
		}
	}
	// The queued session is still there for Accept.
	if s := accept(t, l); s.Conn.RemoteAddr().String() != queued.LocalAddr().String() {
		t.Errorf("accepted %v, want %v", s.Conn.RemoteAddr(), queued.LocalAddr())
	}
}

// TestListenerClose: Close answers every socket it cuts off with
// Bad_TcpServerTooBusy, leaves accepted sessions alone and joins its
// goroutines (TestMain checks for leaks).
func TestListenerClose(t *testing.T) {
	rec := newRecorder()
	l := startListener(t, ListenerConfig{Observer: rec, AcceptQueue: 1, HandshakeTimeout: time.Minute})
	hello := Hello{ServerURI: testURI, EndpointURL: testEndpoint}

	taken := dialFrom(t, l, "")
	sendHello(t, taken, hello)
	s := accept(t, l)

	queued := dialFrom(t, l, "")
	sendHello(t, queued, hello)
	rec.wait(t, EventAccepted, 2)
	waiting := dialFrom(t, l, "")
	sendHello(t, waiting, hello)
	waitPending(t, l, stateAdmitting, 1)
	var silent []*net.TCPConn
	for i := range 5 {
		silent = append(silent, dialFrom(t, l, "127.0.0.2"))
		waitPending(t, l, stateReading, i+1)
	}
	lingering := dialFrom(t, l, "")
	if _, err := lingering.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, EventMalformed, 1)

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range append([]*net.TCPConn{queued, waiting}, silent...) {
		expectError(t, c, ua.StatusBadTCPServerTooBusy)
	}
	expectError(t, lingering, ua.StatusBadTCPMessageTypeInvalid)
	if n := len(rec.matching(EventEvicted)); n != 5 {
		t.Errorf("%d evicted events, want 5", n)
	}
	if n := len(rec.matching(EventDropped)); n != 2 {
		t.Errorf("%d dropped events, want 2", n)
	}
	if _, err := l.Accept(context.Background()); !errors.Is(err, ErrListenerClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("listener still accepts connections")
	}
	// The session handed out before Close is untouched.
	if _, err := s.Conn.Write([]byte("x")); err != nil {
		t.Errorf("accepted session broken by Close: %v", err)
	}
}

func TestAcceptContext(t *testing.T) {
	l := startListener(t, ListenerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Accept(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Accept with cancelled context: %v", err)
	}
}

func TestListenConfig(t *testing.T) {
	_, err := Listen(context.Background(), "127.0.0.1:0", ListenerConfig{
		HandshakeTimeout: -1, MaxHelloSize: 15, MaxPending: -1, MaxPendingPerSource: -1, AcceptQueue: -1,
	})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Listen: %v, want ErrInvalidConfig", err)
	}
	for _, field := range []string{"Validator", "HandshakeTimeout", "MaxHelloSize", "MaxPending ", "MaxPendingPerSource", "AcceptQueue"} {
		if !strings.Contains(err.Error(), "ListenerConfig."+field) {
			t.Errorf("error %q does not report %s", err, field)
		}
	}
	if err := (ListenerConfig{Validator: testAllowList(t), MaxHelloSize: DefaultMaxHelloSize + 1}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("MaxHelloSize above the frame limit: %v", err)
	}
	if _, err := Listen(context.Background(), "127.0.0.1:-1", ListenerConfig{Validator: testAllowList(t)}); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
}

// TestListenerMaxHelloSize: a configured size cap below the frame answers
// Bad_TcpMessageTooLarge.
func TestListenerMaxHelloSize(t *testing.T) {
	l := startListener(t, ListenerConfig{MaxHelloSize: 32})
	c := dialFrom(t, l, "")
	sendHello(t, c, Hello{ServerURI: testURI, EndpointURL: testEndpoint})
	expectError(t, c, ua.StatusBadTCPMessageTooLarge)
}
