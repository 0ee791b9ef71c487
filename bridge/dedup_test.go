package bridge

import (
	"strconv"
	"testing"
	"time"
)

func TestDedup(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	d := newDedup(time.Minute, 3)
	body := []byte(`{"id":"c1","value":1}`)

	e, dup, _ := d.begin("r", "c1", body, t0)
	if e == nil || dup {
		t.Fatal("first command taken for a copy")
	}
	if _, dup, ans := d.begin("r", "c1", body, t0.Add(time.Second)); !dup || ans != nil {
		t.Fatalf("copy while pending: dup=%v answer=%q, want a copy without answer", dup, ans)
	}
	d.finish(e, []byte("reply-1"))
	if _, dup, ans := d.begin("r", "c1", body, t0.Add(2*time.Second)); !dup || string(ans) != "reply-1" {
		t.Fatalf("copy after the answer: dup=%v answer=%q", dup, ans)
	}
	for name, c := range map[string]struct {
		route, id string
		body      []byte
	}{
		"other body":  {"r", "c1", []byte(`{"id":"c1","value":2}`)},
		"other route": {"r2", "c1", body},
		"other id":    {"r", "c2", []byte(`{"id":"c2","value":1}`)},
	} {
		if _, dup, _ := d.begin(c.route, c.id, c.body, t0.Add(3*time.Second)); dup {
			t.Errorf("%s taken for a copy", name)
		}
	}
	// No id: never a copy, never remembered.
	for range 2 {
		if e, dup, _ := d.begin("r", "", []byte(`{"value":1}`), t0); e != nil || dup {
			t.Fatal("command without id remembered")
		}
	}
	// Bounded: three entries at most, the oldest ("c1") went first.
	if n := d.size(); n != 3 {
		t.Fatalf("%d remembered, want 3", n)
	}
	if _, dup, _ := d.begin("r", "c1", body, t0.Add(4*time.Second)); dup {
		t.Error("the oldest entry was not forgotten when the memory was full")
	}
	// Window: everything older than a minute is forgotten.
	later := t0.Add(2 * time.Minute)
	if _, dup, _ := d.begin("r2", "c1", body, later); dup {
		t.Error("copy recognized after the window")
	}
	if n := d.size(); n != 1 {
		t.Errorf("%d remembered after the window, want 1", n)
	}
	// A forgotten command (refused before reaching the server) is new again.
	f, _, _ := d.begin("r", "f", []byte("x"), later)
	d.forget(f)
	if _, dup, _ := d.begin("r", "f", []byte("x"), later); dup {
		t.Error("forgotten command taken for a copy")
	}
	// Large answers are not kept.
	big, _, _ := d.begin("r", "big", []byte("y"), later)
	d.finish(big, make([]byte, maxDedupReply+1))
	if _, dup, ans := d.begin("r", "big", []byte("y"), later); !dup || ans != nil {
		t.Errorf("copy of a command with a large answer: dup=%v, %d bytes answered", dup, len(ans))
	}
	// A nil dedup (off) remembers nothing.
	var off *dedup
	if e, dup, _ := off.begin("r", "c1", body, t0); e != nil || dup {
		t.Error("nil dedup remembered")
	}
	off.finish(nil, nil)
	off.forget(nil)
}

func TestDedupChurn(t *testing.T) {
	d := newDedup(time.Hour, 100)
	t0 := time.Now()
	for i := range 10000 {
		id := strconv.Itoa(i)
		e, dup, _ := d.begin("r", id, []byte(id), t0)
		if dup {
			t.Fatalf("command %d taken for a copy", i)
		}
		d.finish(e, []byte(id))
	}
	if n := d.size(); n != 100 {
		t.Fatalf("%d remembered, want 100", n)
	}
	if len(d.queue)-d.head != 100 || cap(d.queue) > 1000 {
		t.Errorf("queue holds %d live of len %d cap %d: not compacted", len(d.queue)-d.head, len(d.queue), cap(d.queue))
	}
}

// TestDedupForgottenBounded: commands refused (forgotten) in a flood do not
// grow the memory past its bound.
func TestDedupForgottenBounded(t *testing.T) {
	d := newDedup(time.Hour, 10)
	t0 := time.Now()
	for i := range 10000 {
		e, _, _ := d.begin("r", strconv.Itoa(i), nil, t0)
		d.forget(e)
	}
	if live := len(d.queue) - d.head; live > 20 || cap(d.queue) > 1000 {
		t.Errorf("queue of %d entries (cap %d) after a flood of refused commands", live, cap(d.queue))
	}
}
