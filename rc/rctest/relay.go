package rctest

import (
	"net"
	"sync"
)

// Conn is one reverse connection made by Server.Dial: a relay between the
// client's socket and the gopcua server.
type Conn struct {
	client, server net.Conn
	onClose        func(*Conn)

	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	closed bool

	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newConn(client, server net.Conn, onClose func(*Conn)) *Conn {
	c := &Conn{client: client, server: server, onClose: onClose}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *Conn) start() {
	c.wg.Add(2)
	go c.pipe(c.server, c.client)
	go c.pipe(c.client, c.server)
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
		c.mu.Unlock()
		c.cond.Broadcast()
		_ = c.client.Close()
		_ = c.server.Close()
		if c.onClose != nil {
			c.onClose(c)
		}
	})
}

// Wait blocks until both relay goroutines have returned.
func (c *Conn) Wait() { c.wg.Wait() }
