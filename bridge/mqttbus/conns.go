package mqttbus

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// conns opens paho's network connections and can close all of them at
// once: paho's Disconnect returns while an attempt to connect may still be
// running in its goroutines; closing the socket under it ends them, so
// that Close leaves nothing of paho behind.
//
// conns also counts the sockets it opened and calls onDial before handing
// one to paho. paho calls dial synchronously while it (re)connects, before
// it marks the connection usable and before it lists its store to re-send
// what was not acknowledged; its own OnConnectionLost and OnConnect
// callbacks run in goroutines of their own and can come late. The dial is
// therefore the one event the adapter sees for certain before a new
// connection carries anything.
type conns struct {
	timeout time.Duration
	tls     *tls.Config
	onDial  func() // runs before a new socket goes to paho; must not block
	dials   atomic.Uint64

	ctx    context.Context // cancelled by closeAll: aborts dials in progress
	cancel context.CancelFunc
	mu     sync.Mutex
	open   map[*trackedConn]struct{}
}

func newConns(timeout time.Duration, tlsCfg *tls.Config, onDial func()) *conns {
	ctx, cancel := context.WithCancel(context.Background())
	return &conns{timeout: timeout, tls: tlsCfg, onDial: onDial, ctx: ctx, cancel: cancel, open: make(map[*trackedConn]struct{})}
}

// dialed returns the number of sockets handed to paho so far.
func (c *conns) dialed() uint64 { return c.dials.Load() }

// dial is paho's OpenConnectionFunc: TCP, or TLS for ssl, tls and mqtts.
func (c *conns) dial(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	switch u.Scheme {
	case "tcp", "mqtt":
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	case "ssl", "tls", "mqtts":
		cfg := c.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", u.Host)
	default:
		return nil, fmt.Errorf("mqttbus: broker scheme %q not supported", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	t := &trackedConn{Conn: conn, owner: c}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		_ = conn.Close()
		return nil, fmt.Errorf("mqttbus: closed")
	}
	c.open[t] = struct{}{}
	c.mu.Unlock()
	// onDial first: a sender that sees the new count also sees what
	// onDial did.
	c.onDial()
	c.dials.Add(1)
	return t, nil
}

// closeAll closes every open connection and refuses new ones.
func (c *conns) closeAll() {
	c.cancel()
	c.mu.Lock()
	open := c.open
	c.open = make(map[*trackedConn]struct{})
	c.mu.Unlock()
	for t := range open {
		_ = t.Conn.Close()
	}
}

// trackedConn removes itself from its owner when closed.
type trackedConn struct {
	net.Conn
	owner *conns
}

// Close implements net.Conn.
func (t *trackedConn) Close() error {
	t.owner.mu.Lock()
	delete(t.owner.open, t)
	t.owner.mu.Unlock()
	return t.Conn.Close()
}
