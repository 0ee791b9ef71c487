package bridge

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/mapping"
)

func TestSeqTracker(t *testing.T) {
	tr := newSeqTracker()
	const sub = 7
	fresh := func(seq uint32) seqState { return tr.begin(sub, seq, false) }
	again := func(seq uint32) seqState { return tr.begin(sub, seq, true) }
	for seq := uint32(1); seq <= 3; seq++ {
		if st := fresh(seq); st != seqNew {
			t.Fatalf("begin(%d) = %v, want new", seq, st)
		}
	}
	if st := again(2); st != seqInFlight {
		t.Fatalf("republished 2 = %v, want in flight", st)
	}
	tr.done(sub, 2)
	if st := again(2); st != seqDone {
		t.Fatalf("republished 2 after done = %v, want done", st)
	}
	tr.fail(sub, 3)
	if st := again(3); st != seqNew {
		t.Fatalf("republished 3 after fail = %v, want new (publish again)", st)
	}
	tr.done(sub, 1)
	tr.done(sub, 3)
	s := tr.subs[sub]
	if s.floor != 3 || len(s.state) != 0 {
		t.Fatalf("floor %d with %d tracked, want 3 and 0", s.floor, len(s.state))
	}
	// A gap lets the floor pass the lost numbers.
	fresh(6)
	tr.done(sub, 6)
	tr.skip(sub, 4, 5)
	if s.floor != 6 || len(s.state) != 0 {
		t.Fatalf("after the gap: floor %d with %d tracked, want 6 and 0", s.floor, len(s.state))
	}
	// A hole that never fills does not grow the set without bound.
	for seq := uint32(8); seq < 8+maxTracked+10; seq++ {
		fresh(seq)
		tr.done(sub, seq)
	}
	if len(s.state) > maxTracked {
		t.Fatalf("%d numbers tracked, want at most %d", len(s.state), maxTracked)
	}
	if st := again(9); st != seqDone {
		t.Fatalf("republished 9 after the jump = %v, want done", st)
	}
	// A fresh message with an old number: the subscription restarted
	// under its id (a restarted server), and is tracked afresh.
	if st := fresh(1); st != seqRestart {
		t.Fatalf("fresh 1 = %v, want restart", st)
	}
	if st := fresh(2); st != seqNew {
		t.Fatalf("fresh 2 after the restart = %v, want new", st)
	}
	if st := again(1); st != seqInFlight {
		t.Fatalf("republished 1 after the restart = %v, want in flight", st)
	}
	// Sequence numbers wrap around.
	tr.begin(99, math.MaxUint32, false)
	tr.done(99, math.MaxUint32)
	if st := tr.begin(99, 1, false); st != seqNew {
		t.Fatalf("after wrap-around: %v, want new", st)
	}
	tr.forget(sub)
	if st := again(2); st != seqNew {
		t.Fatalf("after forget: %v, want new", st)
	}
}

func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(2, 3) // 2 per second, burst 3
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !b.allow(now) {
			t.Fatalf("burst token %d refused", i)
		}
	}
	if b.allow(now) {
		t.Fatal("fourth token at once allowed")
	}
	if b.allow(now.Add(400 * time.Millisecond)) {
		t.Fatal("token after 0.4 s allowed (needs 0.5 s)")
	}
	if !b.allow(now.Add(500 * time.Millisecond)) {
		t.Fatal("token after 0.5 s refused")
	}
	// A long pause refills only up to the burst.
	later := now.Add(time.Hour)
	for i := range 3 {
		if !b.allow(later) {
			t.Fatalf("token %d after an hour refused", i)
		}
	}
	if b.allow(later) {
		t.Fatal("more than the burst after an hour")
	}
	// A clock going backwards never adds tokens.
	if b.allow(now) {
		t.Fatal("token allowed with a clock going backwards")
	}
}

func TestKVKey(t *testing.T) {
	tests := map[string]string{
		"line1":           "line1",
		"urn:plant:line1": "urn=3Aplant=3Aline1",
		"a.b":             "a=2Eb",
		"a=2Eb":           "a=3D2Eb",
		"x y%":            "x=20y=25",
		"ä":               "=C3=A4",
	}
	for in, want := range tests {
		if got := kvKey(in); got != want {
			t.Errorf("kvKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommandID(t *testing.T) {
	tests := map[string]string{
		`{"id":"c1","value":1}`:  "c1",
		`{"id":7,"value":1}`:     "",
		`{"value":1}`:            "",
		`{"id":"c1","value":`:    "",
		`[1]`:                    "",
		`{"id":"\u00e4","x":[]}`: "ä",
	}
	for in, want := range tests {
		if got := commandID([]byte(in)); got != want {
			t.Errorf("commandID(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	table, err := mapping.New(mapping.Config{Syntax: mapping.NATS, Prefix: "p", Servers: []mapping.Server{{URI: "urn:a"}}})
	if err != nil {
		t.Fatal(err)
	}
	bad := Config{
		Table:           table,
		ResumeTimeout:   -time.Second,
		MinRetryDelay:   time.Minute,
		MaxRetryDelay:   time.Second,
		CommandQueue:    -1,
		Servers:         []ServerConfig{{URI: "urn:b"}, {URI: "urn:a", CommandRate: math.NaN()}, {URI: "urn:a"}},
		ShutdownTimeout: time.Second,
	}
	err = bad.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"Source", "Publisher", "ResumeTimeout", "MinRetryDelay", "CommandQueue",
		`Servers[0].URI "urn:b"`, "Servers[1].CommandRate", `Servers[2].URI "urn:a": listed twice`} {
		if !containsLine(err, want) {
			t.Errorf("Validate does not report %q:\n%v", want, err)
		}
	}
	if _, err := New(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New = %v, want ErrInvalidConfig", err)
	}
}

func containsLine(err error, s string) bool {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		return false
	}
	for _, e := range j.Unwrap() {
		if strings.Contains(e.Error(), s) {
			return true
		}
	}
	return false
}
