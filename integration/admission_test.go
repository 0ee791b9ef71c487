//go:build integration

package integration

// Admission (package rc) against node-opcua's own reverse-connect
// implementation: a server on the allow-list is admitted with the socket
// ready for the client's Hello; a server that is not gets the ERR frame and
// re-dials less and less often.

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"

	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/rc"
)

// eventLog records admission events with their arrival time.
type eventLog struct {
	mu     sync.Mutex
	events []timedEvent
}

type timedEvent struct {
	at time.Time
	rc.Event
}

func (l *eventLog) Observe(e rc.Event) {
	l.mu.Lock()
	l.events = append(l.events, timedEvent{time.Now(), e})
	l.mu.Unlock()
}

func (l *eventLog) of(kind rc.EventKind) []timedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []timedEvent
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// rcListen starts an rc.Listener on a free loopback port admitting
// allowed, and returns it with the client URL servers should dial.
func rcListen(t *testing.T, obs rc.Observer, allowed ...string) (*rc.Listener, string) {
	t.Helper()
	allow, err := rc.NewAllowList(allowed...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := rc.Listen(context.Background(), "127.0.0.1:0", rc.ListenerConfig{Validator: allow, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, "opc.tcp://" + l.Addr().String()
}

// TestAdmissionNodeOPCUA: node-opcua reverse-connects to an rc.Listener,
// is admitted, and the Broker hands the socket to the consumer waiting for
// that ServerUri. The socket is positioned right after the RHE: an OPC UA
// Hello with the RHE's EndpointUrl, byte for byte, gets node-opcua's
// Acknowledge. When the consumer closes it, the server dials again and the
// next Next gets the new socket.
func TestAdmissionNodeOPCUA(t *testing.T) {
	t.Parallel()
	const uri = "urn:rcbridge:test:admission"
	events := &eventLog{}
	l, clientURL := rcListen(t, events, uri)
	b, err := rc.NewBroker(l, rc.BrokerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Broker.Run: %v", err)
		}
	}()

	srv := nodeua.Start(t, nodeua.Config{
		ApplicationURI: uri,
		Hostname:       "plc.invalid",
		ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{clientURL}},
	})

	for round := 1; round <= 2; round++ {
		nctx, ncancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := b.Next(nctx, uri)
		ncancel()
		if err != nil {
			t.Fatalf("round %d: Broker.Next: %v", round, err)
		}
		if s.ServerURI != uri || s.EndpointURL != srv.EndpointURL() {
			t.Fatalf("round %d: session %q %q, want %q %q", round, s.ServerURI, s.EndpointURL, uri, srv.EndpointURL())
		}
		tcp, ok := s.Conn.(*net.TCPConn)
		if !ok {
			t.Fatalf("Session.Conn is %T", s.Conn)
		}
		ack := *uacp.DefaultClientACK
		conn, err := uacp.NewConn(tcp, &ack)
		if err != nil {
			t.Fatal(err)
		}
		hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = conn.Handshake(hctx, s.EndpointURL)
		hcancel()
		if err != nil {
			t.Fatalf("round %d: HEL/ACK over the admitted socket: %v", round, err)
		}
		if conn.MaxMessageSize() == 0 && conn.ReceiveBufSize() == 0 {
			t.Errorf("round %d: empty Acknowledge", round)
		}
		conn.Close()
	}
	if n := len(events.of(rc.EventAccepted)); n < 2 {
		t.Errorf("%d accepted events, want 2", n)
	}
	for _, k := range []rc.EventKind{rc.EventRejected, rc.EventMalformed, rc.EventTimedOut, rc.EventEvicted} {
		if n := len(events.of(k)); n != 0 {
			t.Errorf("%d %v events", n, k)
		}
	}
}

// TestAdmissionUnknownServer: a node-opcua server whose ApplicationUri is
// not on the allow-list gets an ERR frame with Bad_TcpEndpointUrlInvalid
// (Part 6, 7.1.2.6) on every dial, is never admitted, and backs off: the
// time between its dials grows.
//
// node-opcua 2.186.4 reacts to any non-HEL answer after 1 s
// (ServerTCP_transport.throttleTime), then waits its reconnect delay, which
// doubles from ReconnectDelay: the gaps are about 1 s + 0.1, 0.2, 0.4, 0.8,
// 1.6 s, whatever the status code.
func TestAdmissionUnknownServer(t *testing.T) {
	t.Parallel()
	events := &eventLog{}
	l, clientURL := rcListen(t, events, "urn:rcbridge:test:someone-else")
	const delay = 100 * time.Millisecond
	srv := nodeua.Start(t, nodeua.Config{
		ApplicationURI: "urn:rcbridge:test:stranger",
		Hostname:       "plc.invalid",
		ReverseConnect: &nodeua.ReverseConnect{
			ClientURLs:        []string{clientURL},
			ReconnectDelay:    delay,
			MaxReconnectDelay: 3200 * time.Millisecond,
		},
	})

	const dials = 6
	deadline := time.Now().Add(30 * time.Second)
	for len(events.of(rc.EventRejected)) < dials {
		if time.Now().After(deadline) {
			t.Fatalf("%d rejections within 30 s, want %d", len(events.of(rc.EventRejected)), dials)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rejected := events.of(rc.EventRejected)
	for _, e := range rejected {
		var he *rc.HelloError
		if e.Status != ua.StatusBadTCPEndpointURLInvalid || !errors.Is(e.Err, rc.ErrNotAllowed) ||
			!errors.As(e.Err, &he) || he.ServerURI != srv.ApplicationURI() || he.EndpointURL != srv.EndpointURL() {
			t.Errorf("rejection %+v", e.Event)
		}
	}
	var gaps []time.Duration
	for i := 1; i < len(rejected); i++ {
		gaps = append(gaps, rejected[i].at.Sub(rejected[i-1].at))
	}
	t.Logf("gaps between dials: %v", gaps)
	// Backing off: the gaps grow (some scheduling jitter allowed), and the
	// last exceeds the first by most of the doubled delays (0.1 → 1.6 s).
	if first, last := gaps[0], gaps[len(gaps)-1]; last-first < 8*delay {
		t.Errorf("the server does not back off: first gap %v, last %v", first, last)
	}
	for i := 1; i < len(gaps); i++ {
		if gaps[i] < gaps[i-1]-2*delay {
			t.Errorf("gap %d (%v) shorter than gap %d (%v)", i, gaps[i], i-1, gaps[i-1])
		}
	}
	if n := len(events.of(rc.EventAccepted)); n != 0 {
		t.Errorf("%d sessions admitted", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if s, err := l.Accept(ctx); err == nil {
		s.Conn.Close()
		t.Error("Accept returned a session of a server not on the allow-list")
	}
}
