package rctest

import (
	"net"
	"sync"
)

// Conn is one reverse connection made by Server.Dial: a relay between the
// client's socket and the gopcua server.
//
// The relay dials the gopcua server only once the client has sent its first
// bytes (its HEL): gopcua's listener runs the HEL/ACK handshake of each
// socket it accepts before accepting the next, without a deadline, so a
// relay that dialed early would stall every other connection of the server
// until its own client spoke.
type Conn struct {
	client  net.Conn
	onClose func(*Conn)

	mu     sync.Mutex
	cond   *sync.Cond
	server net.Conn // nil until the client spoke; guarded by mu
	frozen bool
	closed bool

	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newConn(client net.Conn, onClose func(*Conn)) *Conn {
	c := &Conn{client: client, onClose: onClose}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// start relays between the client and the server that dial connects to,
// once the client has sent something.
func (c *Conn) start(dial func() (net.Conn, error)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 32<<10)
		n, err := c.client.Read(buf)
		if n == 0 {
			c.Close()
			return
		}
		srv, derr := dial()
		if derr != nil {
			c.Close()
			return
		}
		c.mu.Lock()
		closed := c.closed
		c.server = srv
		c.mu.Unlock()
		if closed {
			_ = srv.Close()
			return
		}
		if !c.waitThawed() {
			return
		}
		if _, werr := srv.Write(buf[:n]); werr != nil || err != nil {
			c.Close()
			return
		}
		c.wg.Add(2)
		go c.pipe(srv, c.client)
		go c.pipe(c.client, srv)
	}()
}

// pipe copies from src to dst until either side fails, holding data back
// while the connection is frozen.
func (c *Conn) pipe(dst, src net.Conn) {
	defer c.wg.Done()
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !c.waitThawed() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitThawed blocks while the connection is frozen; it reports false once
// the connection is closed.
func (c *Conn) waitThawed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.frozen && !c.closed {
		c.cond.Wait()
	}
	return !c.closed
}

// Freeze stops relaying in both directions while both sockets stay open:
// to the client the server looks stalled.
func (c *Conn) Freeze() {
	c.mu.Lock()
	c.frozen = true
	c.mu.Unlock()
}

// Thaw resumes relaying after Freeze; held-back bytes are delivered.
func (c *Conn) Thaw() {
	c.mu.Lock()
	c.frozen = false
	c.mu.Unlock()
	c.cond.Broadcast()
}

// Close closes both sockets: to the client the connection drops. Wait waits
// for the relay to finish.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		srv := c.server
		c.mu.Unlock()
		c.cond.Broadcast()
		_ = c.client.Close()
		if srv != nil {
			_ = srv.Close()
		}
		if c.onClose != nil {
			c.onClose(c)
		}
	})
}

// Wait blocks until both relay goroutines have returned.
func (c *Conn) Wait() { c.wg.Wait() }
