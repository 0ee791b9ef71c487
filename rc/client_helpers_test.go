package rc_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// testLogger logs to stderr when RC_TEST_LOG is set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("RC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// listen opens a loopback listener playing the client side of reverse
// connect.
func listen(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptSession accepts one socket and reads its ReverseHello, like the
// Listener does, and returns the admitted rc.Session.
func acceptSession(ctx context.Context, ln *net.TCPListener) (*rc.Session, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = ln.SetDeadline(dl)
	}
	conn, err := ln.AcceptTCP()
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := rc.ReadHello(conn, 0)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return &rc.Session{ServerURI: h.ServerURI, EndpointURL: h.EndpointURL, Conn: conn}, nil
}

// newServer starts an rctest server closed at the end of the test.
func newServer(t testing.TB, opts rctest.Options) *rctest.Server {
	t.Helper()
	srv, err := rctest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// reverseConnect makes srv dial ln and returns the admitted session and the
// relay connection.
func reverseConnect(t testing.TB, srv *rctest.Server, ln *net.TCPListener) (*rc.Session, *rctest.Conn) {
	return reverseConnectWith(t, srv, ln, srv.Hello())
}

// reverseConnectWith is reverseConnect with the ReverseHello h.
func reverseConnectWith(t testing.TB, srv *rctest.Server, ln *net.TCPListener, h rc.Hello) (*rc.Session, *rctest.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type dialed struct {
		c   *rctest.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		c, err := srv.DialWith(ctx, ln.Addr().String(), h)
		done <- dialed{c, err}
	}()
	s, err := acceptSession(ctx, ln)
	d := <-done
	if err = errors.Join(err, d.err); err != nil {
		if s != nil {
			s.Conn.Close()
		}
		if d.c != nil {
			d.c.Close()
		}
		t.Fatal(err)
	}
	return s, d.c
}

// newFactory returns a rc.Factory for cfg with a test logger.
func newFactory(t testing.TB, cfg rc.ClientConfig) *rc.Factory {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	f, err := rc.NewFactory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// build connects srv to a fresh listener and builds a client with f; the
// client is closed at the end of the test.
func build(t testing.TB, f *rc.Factory, srv *rctest.Server) (*rc.Client, *rctest.Conn) {
	t.Helper()
	return buildWith(t, f, srv, srv.Hello())
}

// buildWith is build with the ReverseHello h.
func buildWith(t testing.TB, f *rc.Factory, srv *rctest.Server, h rc.Hello) (*rc.Client, *rctest.Conn) {
	t.Helper()
	ln := listen(t)
	s, relay := reverseConnectWith(t, srv, ln, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := f.Build(ctx, s)
	if err != nil {
		relay.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c, relay
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
