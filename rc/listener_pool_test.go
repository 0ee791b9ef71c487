package rc

import (
	"net/netip"
	"testing"
	"time"
)

func TestSourceOf(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	}
	for _, tc := range tests {
		if got := sourceOf(netip.MustParseAddr(tc.addr)); got.String() != tc.want {
			t.Errorf("sourceOf(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// poolConn makes a pending socket from source src that arrived at second
// age (older = smaller).
func poolConn(src string, age int, state connState) *pendingConn {
	return &pendingConn{
		source: netip.MustParsePrefix(src),
		since:  time.Unix(int64(age), 0),
		state:  state,
	}
}

func TestPendingPool(t *testing.T) {
	const a, b, c = "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"
	type step struct {
		add    *pendingConn
		victim *pendingConn // nil: none
		ok     bool
	}
	a1, a2, a3 := poolConn(a, 1, stateReading), poolConn(a, 2, stateReading), poolConn(a, 3, stateReading)
	b4, b5 := poolConn(b, 4, stateReading), poolConn(b, 5, stateClosing)
	c6 := poolConn(c, 6, stateReading)
	a7, b8 := poolConn(a, 7, stateReading), poolConn(b, 8, stateReading)

	p := newPendingPool()
	const maxTotal, maxPerSource = 5, 3
	steps := []step{
		{add: a1, ok: true},
		{add: a2, ok: true},
		{add: a3, ok: true},
		{add: b4, ok: true},
		{add: b5, ok: true},
		// Pool full: a has the most sockets; its oldest goes.
		{add: c6, victim: a1, ok: true},
		// Pool full, a and b tie at 2: b holds a lingering socket, which
		// goes first within b, but a's oldest (a2) is older than b's
		// candidate, so a loses again.
		{add: a7, victim: a2, ok: true},
		// b at 2 of 3: not at its cap; pool full: a (a3, a7) and b (b4,
		// b5) tie; a3 is older than b5 (b's lingering candidate).
		{add: b8, victim: a3, ok: true},
	}
	for i, s := range steps {
		victim, ok := p.add(s.add, maxTotal, maxPerSource)
		if ok != s.ok || victim != s.victim {
			t.Fatalf("step %d: add(%v) = %v, %v; want %v, %v", i, s.add.since.Unix(), victimAge(victim), ok, victimAge(s.victim), s.ok)
		}
		if victim != nil && victim.evicted != ErrTooBusy {
			t.Fatalf("step %d: victim not marked", i)
		}
		if p.total > maxTotal {
			t.Fatalf("step %d: %d pending, cap %d", i, p.total, maxTotal)
		}
	}
	// b is at its cap (b4, b5, b8): the lingering b5 goes before the older b4.
	b9 := poolConn(b, 9, stateReading)
	if victim, ok := p.add(b9, 6, maxPerSource); !ok || victim != b5 {
		t.Fatalf("per-source cap: victim %v, want the lingering b5", victimAge(victim))
	}
	p.remove(b5) // already removed: no-op
	if p.total != 5 {
		t.Fatalf("total %d after a no-op remove, want 5", p.total)
	}
}

func TestPendingPoolNeverEvictsAdmitting(t *testing.T) {
	p := newPendingPool()
	x1, x2 := poolConn("10.0.0.1/32", 1, stateAdmitting), poolConn("10.0.0.1/32", 2, stateAdmitting)
	for _, c := range []*pendingConn{x1, x2} {
		if _, ok := p.add(c, 2, 2); !ok {
			t.Fatal("add within caps failed")
		}
	}
	if v, ok := p.add(poolConn("10.0.0.2/32", 3, stateReading), 2, 2); ok || v != nil {
		t.Fatalf("total cap: evicted %v", victimAge(v))
	}
	if v, ok := p.add(poolConn("10.0.0.1/32", 3, stateReading), 5, 2); ok || v != nil {
		t.Fatalf("per-source cap: evicted %v", victimAge(v))
	}
	marked := p.markAll(ErrListenerClosed)
	if len(marked) != 0 {
		t.Fatalf("markAll marked %d admitting sockets", len(marked))
	}
	p.remove(x1)
	p.remove(x2)
	if p.total != 0 || len(p.bySource) != 0 {
		t.Fatalf("pool not empty: %d, %v", p.total, p.bySource)
	}
}

func victimAge(c *pendingConn) any {
	if c == nil {
		return nil
	}
	return c.since.Unix()
}
