package bridge

import "sync"

// seqState is where one NotificationMessage stands.
type seqState uint8

const (
	seqNew      seqState = iota // not seen yet: publish it
	seqInFlight                 // published, the bus has not confirmed it yet
	seqDone                     // confirmed by the bus (and acknowledged)
	seqRestart                  // new, and the first of a subscription that restarted under its old id
)

// maxTracked bounds the sequence numbers remembered above a subscription's
// floor. Numbers normally leave the set as soon as everything before them
// is confirmed; only a hole that never fills (a message the server dropped
// without a gap report) keeps them, and then the floor jumps over it.
const maxTracked = 1 << 14

// seqTracker remembers, per subscription, which NotificationMessages were
// published and confirmed, so that a message the server sends again with
// Republish after a resume is acknowledged without being published twice.
// Safe for concurrent use: begin runs on the pipeline goroutine, done and
// fail on the bus adapter's confirmation goroutines.
type seqTracker struct {
	mu   sync.Mutex
	subs map[uint32]*subSeqs
}

// subSeqs tracks one subscription: every sequence number up to floor is
// done; above it, state holds the numbers in flight or done.
type subSeqs struct {
	floor uint32
	state map[uint32]seqState
}

func newSeqTracker() *seqTracker {
	return &seqTracker{subs: make(map[uint32]*subSeqs)}
}

// after reports whether sequence number a comes after b, in the serial
// number arithmetic of 32-bit sequence numbers that wrap around.
func after(a, b uint32) bool { return int32(a-b) > 0 }

// begin returns the state of (sub, seq) and, when it is new, marks it in
// flight. Only a republished message can have been seen before: a fresh
// one (from Publish) that was is the first of a subscription the server
// created again under the same id, whose numbers start afresh, and begin
// then forgets the old one and returns seqRestart.
func (t *seqTracker) begin(sub, seq uint32, republished bool) seqState {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	restart := false
	if s != nil && !republished {
		_, seen := s.state[seq]
		restart = seen || !after(seq, s.floor)
	}
	if s == nil || restart {
		// The first message seen of a subscription sets the floor just
		// below it.
		s = &subSeqs{floor: seq - 1, state: make(map[uint32]seqState)}
		t.subs[sub] = s
	}
	if !after(seq, s.floor) {
		return seqDone
	}
	if st, ok := s.state[seq]; ok {
		return st
	}
	s.state[seq] = seqInFlight
	if restart {
		return seqRestart
	}
	if len(s.state) > maxTracked {
		s.jump()
	}
	return seqNew
}

// done marks (sub, seq) confirmed.
func (t *seqTracker) done(sub, seq uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	if s == nil || !after(seq, s.floor) {
		return
	}
	s.state[seq] = seqDone
	s.advance()
}

// fail forgets (sub, seq): the bus gave up on it, so a Republish of it must
// be published again.
func (t *seqTracker) fail(sub, seq uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.subs[sub]; s != nil {
		delete(s.state, seq)
	}
}

// skip marks from..to of sub as gone for good (a gap), so the floor can
// move past them.
func (t *seqTracker) skip(sub, from, to uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	if s == nil || from == 0 || after(from, to) {
		return
	}
	for seq := from; ; seq++ {
		if after(seq, s.floor) {
			if _, ok := s.state[seq]; !ok {
				s.state[seq] = seqDone
			}
		}
		if seq == to || len(s.state) > maxTracked {
			break
		}
	}
	s.advance()
}

// forget drops what is known of sub: it is gone.
func (t *seqTracker) forget(sub uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs, sub)
}

// advance moves the floor over the done numbers right above it.
func (s *subSeqs) advance() {
	for {
		next := s.floor + 1
		if s.state[next] != seqDone {
			return
		}
		delete(s.state, next)
		s.floor = next
	}
}

// jump moves the floor up to the oldest tracked number when too many are
// tracked: a hole below it is never going to fill.
func (s *subSeqs) jump() {
	first, ok := uint32(0), false
	for seq := range s.state {
		if !ok || after(first, seq) {
			first, ok = seq, true
		}
	}
	if ok {
		s.floor = first - 1
		s.advance()
	}
}
