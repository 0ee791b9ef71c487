package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Gate is a TCP forwarder on a free loopback port in front of a broker. A
// test closes it to keep one client (the bridge) away from a restarted
// broker until the other clients are back, so that what those clients
// miss is what the broker lost, not what it had no subscriber for yet.
type Gate struct {
	target string
	l      net.Listener

	mu    sync.Mutex
	shut  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewGate forwards a free loopback port to target ("host:port"), open; it
// stops at test cleanup.
func NewGate(t testing.TB, target string) *Gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{target: target, l: l, conns: make(map[net.Conn]bool)}
	g.wg.Go(g.accept)
	t.Cleanup(func() {
		_ = l.Close()
		g.Close()
		g.wg.Wait()
	})
	return g
}

// Addr is the gate's "host:port".
func (g *Gate) Addr() string { return g.l.Addr().String() }

// Close cuts every forwarded connection and refuses new ones until Open.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = true
	for c := range g.conns {
		_ = c.Close()
	}
	clear(g.conns)
}

// Open forwards new connections again.
func (g *Gate) Open() {
	g.mu.Lock()
	g.shut = false
	g.mu.Unlock()
}

func (g *Gate) accept() {
	for {
		in, err := g.l.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		shut := g.shut
		g.mu.Unlock()
		if shut {
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", g.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		g.mu.Lock()
		if g.shut {
			g.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			continue
		}
		g.conns[in], g.conns[out] = true, true
		g.mu.Unlock()
		g.wg.Go(func() { g.pipe(out, in) })
		g.wg.Go(func() { g.pipe(in, out) })
	}
}

// pipe copies until either side ends, then closes both.
func (g *Gate) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src) // ends with an error when either side closes
	_ = dst.Close()
	_ = src.Close()
	g.mu.Lock()
	delete(g.conns, dst)
	delete(g.conns, src)
	g.mu.Unlock()
}
