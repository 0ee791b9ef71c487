package rctest

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
)

func newFactory(t *testing.T) *rc.Factory {
	t.Helper()
	f, err := rc.NewFactory(rc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// session builds a client on conn, a socket to the server whose
// ReverseHello (if any) was already read.
func session(t *testing.T, conn net.Conn, h rc.Hello) *rc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := newFactory(t).Build(ctx, &rc.Session{ServerURI: h.ServerURI, EndpointURL: h.EndpointURL, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func read(c *rc.Client, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := c.ReadValues(ctx, ua.NewNumericNodeID(0, 2258)) // Server_ServerStatus_CurrentTime
	return err
}

func TestServerDial(t *testing.T) {
	srv, err := NewServer(Options{ServerURI: "urn:test:rctest", EndpointURL: "opc.tcp://plc.invalid:4840"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	relay, err := srv.Dial(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	h, err := rc.ReadHello(conn, 0)
	if err != nil || h != srv.Hello() || h.ServerURI != "urn:test:rctest" || h.EndpointURL != "opc.tcp://plc.invalid:4840" {
		t.Fatalf("ReadHello = %+v, %v", h, err)
	}
	c := session(t, conn, h)
	if err := read(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// Frozen, the relay holds everything back; thawed, it delivers.
	relay.Freeze()
	if err := read(c, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read through a frozen relay: %v, want DeadlineExceeded", err)
	}
	relay.Thaw()
	if err := read(c, 5*time.Second); err != nil {
		t.Fatalf("read after Thaw: %v", err)
	}

	relay.Close()
	relay.Wait()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not see the relay close")
	}
}

func TestServerListenDirect(t *testing.T) {
	srv, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr, err := srv.ListenDirect()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := session(t, conn, rc.Hello{ServerURI: DefaultServerURI, EndpointURL: srv.URL()})
	if err := read(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ListenDirect(); err == nil {
		t.Error("second ListenDirect accepted")
	}
}

func TestDialHelloErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := DialHello(ctx, "127.0.0.1:1", rc.Hello{ServerURI: strings.Repeat("x", rc.MaxURILength+1)}); !errors.Is(err, rc.ErrStringTooLong) {
		t.Errorf("oversized ServerUri: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := DialHello(ctx, addr, rc.Hello{ServerURI: "urn:x"}); err == nil {
		t.Error("dialing a closed port succeeded")
	}
}
