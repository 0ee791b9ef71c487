package rc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
	"go.uber.org/goleak"
)

// finishes runs fn and fails the test if it does not return within limit:
// the property under test is "an error within the deadline, never a hang".
func finishes(t *testing.T, limit time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("still blocked after %s", limit)
	}
}

// scripted plays a misbehaving server: it dials ln, sends an RHE with
// endpointURL and then runs script on the raw socket.
func scripted(t *testing.T, ln *net.TCPListener, endpointURL string, script func(net.Conn)) *rc.Session {
	t.Helper()
	ctx := ctxTimeout(t, 5*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := rctest.DialHello(ctx, ln.Addr().String(), rc.Hello{ServerURI: "urn:test:bad", EndpointURL: endpointURL})
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		script(conn)
	}()
	t.Cleanup(func() { <-done })
	s, err := acceptSession(ctx, ln)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readHEL reads one Hello message and returns its EndpointUrl.
// Specification: Part 6, 7.1.2.3.
func readHEL(conn net.Conn) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		return "", err
	}
	if string(hdr[:4]) != "HELF" {
		return "", errors.New("not a HEL: " + string(hdr[:4]))
	}
	body := make([]byte, binary.LittleEndian.Uint32(hdr[4:])-8)
	if _, err := io.ReadFull(conn, body); err != nil {
		return "", err
	}
	n := binary.LittleEndian.Uint32(body[20:])
	return string(body[24 : 24+n]), nil
}

// ackFrame encodes an Acknowledge message with both buffer sizes bufSize.
// Specification: Part 6, 7.1.2.4.
func ackFrame(bufSize uint32) []byte { return ackFrameOf(bufSize, bufSize) }

// ackFrameOf encodes an Acknowledge message with the server's
// ReceiveBufferSize receive and SendBufferSize send.
func ackFrameOf(receive, send uint32) []byte {
	b := []byte("ACKF")
	b = binary.LittleEndian.AppendUint32(b, 28)
	for _, v := range []uint32{0, receive, send, 1 << 24, 0} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// waitClosed waits until the peer closes conn.
func waitClosed(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, conn)
}

func TestHelloCarriesEndpointURL(t *testing.T) {
	const url = "opc.tcp://plc.invalid:4840/Some Path/ü"
	ln := listen(t)
	got := make(chan string, 1)
	s := scripted(t, ln, url, func(conn net.Conn) {
		hel, err := readHEL(conn)
		if err != nil {
			t.Error(err)
		}
		got <- hel
		// Answer with an ERR frame: the client must give up cleanly.
		_ = rc.WriteErrorFrame(conn, ua.StatusBadTCPEndpointURLInvalid, "test")
		waitClosed(conn)
	})
	f := newFactory(t, rc.ClientConfig{})
	_, err := f.Build(ctxTimeout(t, 5*time.Second), s)
	if !errors.Is(err, rc.ErrHandshake) {
		t.Errorf("Build = %v, want ErrHandshake", err)
	}
	if hel := <-got; hel != url {
		t.Errorf("HEL EndpointUrl = %q, want the RHE's %q", hel, url)
	}
}

func testUnresolvableEndpointHost(t *testing.T, srv *rctest.Server) {
	c, _ := buildWith(t, newFactory(t, rc.ClientConfig{}), srv, rc.Hello{ServerURI: srv.Hello().ServerURI, EndpointURL: "opc.tcp://plc.invalid:4840"})
	if c.EndpointURL() != "opc.tcp://plc.invalid:4840" {
		t.Errorf("EndpointURL = %q", c.EndpointURL())
	}
	if _, err := c.ReadValues(ctxTimeout(t, 5*time.Second), ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime)); err != nil {
		t.Fatal(err)
	}
}

func TestMisbehavingServerFailsWithinDeadline(t *testing.T) {
	garbage := []byte("\x00\x01GARBAGE\xff\xfe\xfd not OPC UA at all, not even close.......")
	cases := []struct {
		name   string
		script func(net.Conn)
		want   error
	}{
		{"silent after RHE", waitClosed, context.DeadlineExceeded},
		{"garbage after RHE", func(c net.Conn) {
			_, _ = readHEL(c)
			_, _ = c.Write(garbage)
			waitClosed(c)
		}, rc.ErrHandshake},
		{"huge ACK buffer", func(c net.Conn) {
			_, _ = readHEL(c)
			_, _ = c.Write(ackFrame(1 << 31))
			waitClosed(c)
		}, rc.ErrHandshake},
		{"silent after ACK", func(c net.Conn) {
			_, _ = readHEL(c)
			_, _ = c.Write(ackFrame(65535))
			waitClosed(c)
		}, context.DeadlineExceeded},
		{"garbage after ACK", func(c net.Conn) {
			_, _ = readHEL(c)
			_, _ = c.Write(ackFrame(65535))
			for range 20 {
				if _, err := c.Write(garbage); err != nil {
					return
				}
			}
			waitClosed(c)
		}, rc.ErrHandshake},
		{"closes after ACK", func(c net.Conn) {
			_, _ = readHEL(c)
			_, _ = c.Write(ackFrame(65535))
		}, rc.ErrHandshake},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			s := scripted(t, ln, "opc.tcp://plc.invalid:4840", tc.script)
			f := newFactory(t, rc.ClientConfig{})
			const deadline = 500 * time.Millisecond
			var err error
			finishes(t, deadline+10*time.Second, func() {
				_, err = f.Build(ctxTimeout(t, deadline), s)
			})
			if !errors.Is(err, tc.want) {
				t.Errorf("Build = %v, want %v", err, tc.want)
			}
		})
	}
}

func testStalledServerAfterSetup(t *testing.T, srv *rctest.Server) {
	c, relay := build(t, newFactory(t, rc.ClientConfig{}), srv)
	relay.Freeze()
	defer relay.Thaw()

	var err error
	finishes(t, 10*time.Second, func() {
		_, err = c.ReadValues(ctxTimeout(t, 300*time.Millisecond), ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime))
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read from a stalled server = %v, want DeadlineExceeded", err)
	}
	finishes(t, 10*time.Second, func() {
		err = c.Close(ctxTimeout(t, 300*time.Millisecond))
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v", err)
	}
	if !errors.Is(c.Err(), rc.ErrClosed) {
		t.Errorf("Err after Close = %v", c.Err())
	}
}

func testConnectionDropped(t *testing.T, srv *rctest.Server) {
	c, relay := build(t, newFactory(t, rc.ClientConfig{}), srv)
	relay.Close()

	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the socket dropped")
	}
	if err := c.Err(); !errors.Is(err, rc.ErrConnectionLost) {
		t.Errorf("Err = %v, want ErrConnectionLost", err)
	}
	_, err := c.ReadValues(ctxTimeout(t, 5*time.Second), ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime))
	if !errors.Is(err, rc.ErrConnectionLost) {
		t.Errorf("Read after drop = %v, want ErrConnectionLost", err)
	}
	if err := c.Close(ctxTimeout(t, time.Second)); err != nil {
		t.Errorf("Close after drop = %v", err)
	}
}

func TestBuildRejectsNonTCP(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	f := newFactory(t, rc.ClientConfig{})
	_, err := f.Build(context.Background(), &rc.Session{ServerURI: "urn:x", EndpointURL: "opc.tcp://x:1", Conn: a})
	if !errors.Is(err, rc.ErrNotTCP) {
		t.Fatalf("Build = %v, want ErrNotTCP", err)
	}
	if _, err := a.Write([]byte{1}); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("the connection was not closed: %v", err)
	}
}

func TestCloseLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := rctest.NewServer(rctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln := listen(t)
	f := newFactory(t, rc.ClientConfig{})
	for range 3 {
		s, relay := reverseConnect(t, srv, ln)
		c, err := f.Build(ctxTimeout(t, 10*time.Second), s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadValues(ctxTimeout(t, 5*time.Second), ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime)); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		relay.Close()
		relay.Wait()
	}
}
