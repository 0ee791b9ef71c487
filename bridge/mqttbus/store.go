package mqttbus

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// pubRec tracks one QoS 1/2 message until the broker acknowledged it.
type pubRec struct {
	b    *batch        // the data batch it belongs to, or nil
	i    int           // its index in b
	done chan struct{} // closed on acknowledgement, for replies and presence
}

// ackStore is the paho session store. It keeps QoS 1/2 messages in
// memory, in the order they were stored, until the broker acknowledged
// them, and reports every acknowledgement.
//
// paho removes an outbound PUBLISH from its store exactly when the
// PUBACK (QoS 1) or PUBCOMP (QoS 2) arrives; that removal is the
// confirmation the adapter reports. paho's own tokens cannot serve: when
// paho re-sends stored messages after a reconnect it completes the
// original tokens without an error before the broker acknowledged the
// re-sent copies.
//
// The memory store survives broker restarts and reconnects: everything
// unacknowledged is sent again on the new connection (clean session is
// off). It does not survive the bridge process, by design: a message is
// acknowledged to the OPC UA server only after its PUBACK, so a message
// lost with the process was never acknowledged there either (DESIGN
// decision 3). paho's file store was not used: it panics on I/O errors
// and does not sync.
//
// paho starts a re-send by listing the store (All) on the new connection,
// and marks the connection usable before the re-send is done. A data
// message stored after that listing, or being handed to paho while it
// started, may reach the broker before older re-sent ones; such messages
// are kept as "late" and sent once more after the re-send, so that the
// last value on every topic is the newest.
type ackStore struct {
	mu       sync.Mutex
	seq      uint64
	entries  map[string]storeEntry
	recs     map[uint16]*pubRec // claimed outbound PUBLISH by packet id
	next     *pubRec            // claimed by the next outbound PUBLISH stored
	resuming bool               // a re-send started and was not released yet
	resumes  atomic.Uint64      // re-sends started, ever
	late     []*pubRec          // data messages stored while resuming
	room     chan struct{}      // closed when an acknowledgement frees room
	onAck    func(*pubRec)      // called outside mu
	onResume func(n int)        // a re-send of n messages starts; outside mu
}

type storeEntry struct {
	seq uint64
	pkt packets.ControlPacket
}

var _ mqtt.Store = (*ackStore)(nil)

func newAckStore(onAck func(*pubRec), onResume func(int)) *ackStore {
	return &ackStore{
		entries: make(map[string]storeEntry), recs: make(map[uint16]*pubRec),
		onAck: onAck, onResume: onResume,
	}
}

// addLate keeps rec for a repeat after the re-send: its PUBLISH was being
// handed to paho when the re-send started, so it may have gone out on the
// new connection first and been acknowledged before paho's re-send
// reached it.
func (s *ackStore) addLate(rec *pubRec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.late {
		if r == rec {
			return
		}
	}
	s.late = append(s.late, rec)
}

// release ends the current re-send and returns the late messages, in
// order.
func (s *ackStore) release() []*pubRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	late := s.late
	s.late = nil
	s.resuming = false
	return late
}

// arm makes rec the owner of the next outbound PUBLISH paho stores. The
// caller serialises arm / paho Publish / disarm.
func (s *ackStore) arm(rec *pubRec) {
	s.mu.Lock()
	s.next = rec
	s.mu.Unlock()
}

// disarm reports whether the armed record was claimed (paho stored the
// message) and clears it.
func (s *ackStore) disarm() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	claimed := s.next == nil
	s.next = nil
	return claimed
}

// waitRoom blocks until fewer than limit claimed records are outstanding;
// it returns false when stop closes first.
func (s *ackStore) waitRoom(limit int, stop <-chan struct{}) bool {
	for {
		s.mu.Lock()
		if len(s.recs) < limit {
			s.mu.Unlock()
			return true
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			return false
		}
	}
}

// outstanding returns the number of claimed records not yet acknowledged.
func (s *ackStore) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// drop forgets every record (Close); it returns them.
func (s *ackStore) drop() []*pubRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pubRec, 0, len(s.recs))
	for id, r := range s.recs {
		out = append(out, r)
		delete(s.recs, id)
	}
	return out
}

// Open implements mqtt.Store.
func (s *ackStore) Open() {}

// Close implements mqtt.Store. The content is kept for the next connect.
func (s *ackStore) Close() {}

// Put implements mqtt.Store. A PUBLISH is stored as a copy: paho sets the
// DUP flag on the packet it gets back for the re-send while its sending
// goroutine may still be writing the original (a data race in paho 1.5.1).
func (s *ackStore) Put(key string, pkt packets.ControlPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		s.seq++
		e.seq = s.seq
	}
	p, isPub := pkt.(*packets.PublishPacket)
	if isPub {
		cp := *p
		e.pkt = &cp
	} else {
		e.pkt = pkt
	}
	s.entries[key] = e
	if isPub && isOutbound(key) && s.next != nil {
		s.recs[p.MessageID] = s.next
		if s.resuming && s.next.b != nil {
			s.late = append(s.late, s.next)
		}
		s.next = nil
	}
}

// Get implements mqtt.Store.
func (s *ackStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[key].pkt
}

// All implements mqtt.Store: keys in the order they were first stored, so
// that re-sent messages keep their order. paho calls it when it starts the
// re-send on a new connection.
func (s *ackStore) All() []string {
	s.mu.Lock()
	keys := make([]string, 0, len(s.entries))
	for k := range s.entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(s.entries[a].seq, s.entries[b].seq) })
	s.resuming = true
	s.resumes.Add(1)
	n := len(s.recs)
	s.mu.Unlock()
	s.onResume(n)
	return keys
}

// Del implements mqtt.Store. Removing an outbound PUBLISH or PUBREL is
// the broker's acknowledgement (PUBACK, PUBCOMP).
func (s *ackStore) Del(key string) {
	s.mu.Lock()
	delete(s.entries, key)
	var rec *pubRec
	if isOutbound(key) {
		if id, err := strconv.ParseUint(key[2:], 10, 16); err == nil {
			rec = s.recs[uint16(id)]
			delete(s.recs, uint16(id))
		}
		if rec != nil && s.room != nil {
			close(s.room)
			s.room = nil
		}
	}
	s.mu.Unlock()
	if rec != nil {
		s.onAck(rec)
	}
}

// Reset implements mqtt.Store (paho calls it only for clean sessions).
func (s *ackStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.entries)
}

func isOutbound(key string) bool { return len(key) > 2 && key[:2] == "o." }
