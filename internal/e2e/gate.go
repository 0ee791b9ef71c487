package e2e

import (
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

	mu     sync.Mutex
	shut   bool
	held   bool       // client-to-broker bytes wait
	unheld *sync.Cond // signalled when held ends or the gate closes
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
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
	g.unheld = sync.NewCond(&g.mu)
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

// Close cuts every forwarded connection, dropping what Hold kept back,
// and refuses new ones until Open.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut, g.held = true, false
	for c := range g.conns {
		_ = c.Close()
	}
	clear(g.conns)
	g.unheld.Broadcast()
}

// Open forwards new connections again.
func (g *Gate) Open() {
	g.mu.Lock()
	g.shut = false
	g.mu.Unlock()
}

// Hold keeps back what clients send to the broker (the broker's side
// still flows) until Close: a client's acknowledgements are then lost with
// its connection.
func (g *Gate) Hold() {
	g.mu.Lock()
	g.held = true
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
		g.wg.Go(func() { g.pipe(out, in, true) })
		g.wg.Go(func() { g.pipe(in, out, false) })
	}
}

// pipe copies until either side ends, then closes both; upstream (client
// to broker) waits while the gate holds.
func (g *Gate) pipe(dst, src net.Conn, upstream bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && upstream && !g.pass() {
			break
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break // either side closed
		}
	}
	_ = dst.Close()
	_ = src.Close()
	g.mu.Lock()
	delete(g.conns, dst)
	delete(g.conns, src)
	g.mu.Unlock()
}

// pass waits while the gate holds and reports whether the bytes may go on
// (false once the connection was cut).
func (g *Gate) pass() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.held && !g.shut {
		g.unheld.Wait()
	}
	return !g.shut
}
