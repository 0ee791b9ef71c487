package mqttbus

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// conns opens paho's network connections and can close all of them at
// once: paho's Disconnect returns while an attempt to connect may still be
// running in its goroutines; closing the socket under it ends them, so
// that Close leaves nothing of paho behind.
type conns struct {
	timeout time.Duration
	tls     *tls.Config

	ctx    context.Context // cancelled by closeAll: aborts dials in progress
	cancel context.CancelFunc
	mu     sync.Mutex
	open   map[*trackedConn]struct{}
}

func newConns(timeout time.Duration, tlsCfg *tls.Config) *conns {
	ctx, cancel := context.WithCancel(context.Background())
	return &conns{timeout: timeout, tls: tlsCfg, ctx: ctx, cancel: cancel, open: make(map[*trackedConn]struct{})}
}

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
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("mqttbus: closed")
	}
	c.open[t] = struct{}{}
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
