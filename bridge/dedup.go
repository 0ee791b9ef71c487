package bridge

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Command de-duplication. MQTT QoS 1 delivers a command at least once: a
// client that lost the PUBACK sends it again after its reconnect, and the
// broker forwards both copies. A NATS client retrying after a timeout does
// the same. So the bridge remembers, for DedupWindow, every command that
// carries a correlation id, by route, id and the digest of its whole body.
// A copy of a command that was written or called gets the same answer
// again and is not carried out; a copy that arrives while the first is
// still waiting or being carried out gets no answer of its own (the first
// one's follows). A command refused before it reached the server (offline,
// rate limit, queue full, malformed) is forgotten, so that a retry is
// carried out: nothing was written. A command without an id is never taken
// for a copy, nor is one whose body differs.

// maxDedupReply is the largest reply kept to answer copies; a copy of a
// command with a larger reply gets none.
const maxDedupReply = 64 << 10

// dedupKey identifies a command.
type dedupKey struct {
	route, id string
	body      [sha256.Size]byte
}

// dedupEntry is one remembered command; reply is nil until it was
// answered.
type dedupEntry struct {
	key   dedupKey
	at    time.Time
	reply []byte
}

// dedup is the bounded memory of recent commands: at most max entries,
// none older than window. Safe for concurrent use.
type dedup struct {
	window time.Duration
	max    int

	mu      sync.Mutex
	entries map[dedupKey]*dedupEntry
	queue   []*dedupEntry // by arrival, oldest first, from head
	head    int
}

func newDedup(window time.Duration, max int) *dedup {
	return &dedup{window: window, max: max, entries: make(map[dedupKey]*dedupEntry)}
}

// begin records a command that arrived at now. For a copy of a
// remembered one it returns dup = true and the answer given to it, nil
// while that is pending; otherwise the new entry to finish.
func (d *dedup) begin(route, id string, body []byte, now time.Time) (e *dedupEntry, dup bool, reply []byte) {
	if d == nil || id == "" {
		return nil, false, nil
	}
	k := dedupKey{route: route, id: id, body: sha256.Sum256(body)}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked(now)
	if old, ok := d.entries[k]; ok {
		return nil, true, old.reply
	}
	e = &dedupEntry{key: k, at: now}
	d.entries[k] = e
	d.queue = append(d.queue, e)
	// Forgotten entries keep their place in the queue until they reach
	// its head: bound the queue too.
	for len(d.entries) > d.max || len(d.queue)-d.head > 2*d.max {
		d.popLocked()
	}
	return e, false, nil
}

// finish records the answer given to e's command. e may be nil.
func (d *dedup) finish(e *dedupEntry, reply []byte) {
	if d == nil || e == nil || len(reply) > maxDedupReply {
		return
	}
	d.mu.Lock()
	e.reply = reply
	d.mu.Unlock()
}

// forget forgets e's command: it was refused before reaching the server.
// e may be nil.
func (d *dedup) forget(e *dedupEntry) {
	if d == nil || e == nil {
		return
	}
	d.mu.Lock()
	if d.entries[e.key] == e {
		delete(d.entries, e.key)
	}
	d.mu.Unlock()
}

// expireLocked forgets the entries older than the window.
func (d *dedup) expireLocked(now time.Time) {
	for d.head < len(d.queue) && now.Sub(d.queue[d.head].at) >= d.window {
		d.popLocked()
	}
}

// popLocked forgets the oldest entry.
func (d *dedup) popLocked() {
	e := d.queue[d.head]
	d.queue[d.head] = nil
	d.head++
	if d.entries[e.key] == e {
		delete(d.entries, e.key)
	}
	if d.head > len(d.queue)/2 {
		d.queue = append(d.queue[:0], d.queue[d.head:]...)
		d.head = 0
	}
}

// size returns how many commands are remembered.
func (d *dedup) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}
