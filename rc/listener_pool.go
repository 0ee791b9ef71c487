package rc

import (
	"net"
	"net/netip"
	"time"
)

// connState is where a pending socket is in its handshake.
type connState uint8

const (
	// stateReading: waiting for the ReverseHello. Evictable.
	stateReading connState = iota
	// stateAdmitting: ReverseHello received; being validated or waiting for
	// room in the Accept queue. Not evictable: the server did its part.
	stateAdmitting
	// stateClosing: malformed first message, ERR sent, draining what the
	// peer still sends before the close (see lingerClose). Evictable, and evicted first: it
	// costs nothing to cut short.
	stateClosing
)

// pendingConn is a socket holding a pending slot. Its fields other than
// conn, remote, source and since are guarded by the Listener's mutex.
type pendingConn struct {
	conn   *net.TCPConn
	remote netip.AddrPort
	source netip.Prefix
	since  time.Time

	state connState
	// evicted is set, with the reason, when the pool removed the socket to
	// make room or the Listener closed. The socket's goroutine then sends
	// the ERR (if still reading) and closes it.
	evicted error
}

// pendingPool tracks pending sockets per source, in arrival order, and picks
// eviction victims. It is not safe for concurrent use.
//
// Policy (DESIGN.md decision 4): the newest socket always gets a slot if any
// can be freed. A legitimate server sends its ReverseHello within
// milliseconds of connecting, so the socket that has stayed silent longest is
// the least likely to be legitimate. When the newcomer's source is at its
// per-source cap, the victim is that source's oldest evictable socket: a
// source only ever competes with itself there. When the pool is at its total
// cap, the victim is taken from the source holding the most pending sockets
// (ties: the one with the oldest candidate), so a flood from a few addresses
// cannot push out a server that holds a single slot. Within a source,
// sockets already rejected and lingering (stateClosing) go first, then the
// oldest silent ones; sockets that delivered a ReverseHello are never
// evicted. Only when nothing is evictable is the newcomer refused.
type pendingPool struct {
	total    int
	bySource map[netip.Prefix][]*pendingConn
}

func newPendingPool() *pendingPool {
	return &pendingPool{bySource: make(map[netip.Prefix][]*pendingConn)}
}

// add inserts c, evicting one socket if a cap requires it. It returns the
// evicted socket (already removed and marked with reason ErrTooBusy), or
// ok=false when c cannot be admitted because nothing is evictable.
func (p *pendingPool) add(c *pendingConn, maxTotal, maxPerSource int) (victim *pendingConn, ok bool) {
	switch {
	case len(p.bySource[c.source]) >= maxPerSource:
		victim = pickVictim(p.bySource[c.source])
	case p.total >= maxTotal:
		victim = p.pickGlobalVictim()
	default:
		p.insert(c)
		return nil, true
	}
	if victim == nil {
		return nil, false
	}
	p.remove(victim)
	victim.evicted = ErrTooBusy
	p.insert(c)
	return victim, true
}

func (p *pendingPool) insert(c *pendingConn) {
	p.bySource[c.source] = append(p.bySource[c.source], c)
	p.total++
}

// remove deletes c from the pool. It is a no-op if c was already removed.
func (p *pendingPool) remove(c *pendingConn) {
	list := p.bySource[c.source]
	for i, x := range list {
		if x != c {
			continue
		}
		list[i] = nil
		list = append(list[:i], list[i+1:]...)
		if len(list) == 0 {
			delete(p.bySource, c.source)
		} else {
			p.bySource[c.source] = list
		}
		p.total--
		return
	}
}

// markAll marks every evictable socket with reason and returns them; they
// stay in the pool until their goroutines remove them.
func (p *pendingPool) markAll(reason error) []*pendingConn {
	var out []*pendingConn
	for _, list := range p.bySource {
		for _, c := range list {
			if c.state != stateAdmitting && c.evicted == nil {
				c.evicted = reason
				out = append(out, c)
			}
		}
	}
	return out
}

// pickVictim returns the first lingering socket of list, else the oldest one
// still reading, else nil. list is in arrival order.
func pickVictim(list []*pendingConn) *pendingConn {
	var reading *pendingConn
	for _, c := range list {
		switch {
		case c.evicted != nil:
		case c.state == stateClosing:
			return c
		case c.state == stateReading && reading == nil:
			reading = c
		}
	}
	return reading
}

// pickGlobalVictim applies pickVictim to the source with the most pending
// sockets that has a victim; ties go to the source whose victim is older.
func (p *pendingPool) pickGlobalVictim() *pendingConn {
	var best *pendingConn
	bestLen := 0
	for _, list := range p.bySource {
		if len(list) < bestLen {
			continue
		}
		v := pickVictim(list)
		if v == nil {
			continue
		}
		if len(list) > bestLen || v.since.Before(best.since) {
			best, bestLen = v, len(list)
		}
	}
	return best
}

// sourceOf returns the address block a peer's pending sockets are counted
// against: the IPv4 address itself, or the /64 of an IPv6 address (one
// subscriber usually owns a whole /64, so counting single IPv6 addresses
// would make the per-source cap meaningless).
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	pfx, err := a.Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return pfx
}
