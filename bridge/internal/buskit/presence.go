package buskit

import (
	"sync"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

// PresenceBook records the latest presence of every route and serialises
// sending it, so that an adapter can publish it again after a reconnect.
// The zero value is ready to use; it is safe for concurrent use.
type PresenceBook struct {
	mu sync.Mutex // held while sending, so presences go out in order
	m  map[string]bridge.Presence
}

// Announce records p as the latest presence of its route and sends it with
// send, under the book's lock.
func (pb *PresenceBook) Announce(p bridge.Presence, send func(bridge.Presence) error) error {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.m == nil {
		pb.m = make(map[string]bridge.Presence)
	}
	pb.m[p.Route] = p
	return send(p)
}

// Republish sends every recorded presence again, stopping at the first
// error, which it returns with the route that failed. When self is set and
// recorded as online, it is first re-dated to now: it replaces a last will
// the broker may have published while the adapter was away.
func (pb *PresenceBook) Republish(self *bridge.Presence, send func(bridge.Presence) error) (route string, err error) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if self != nil {
		if p, ok := pb.m[self.Route]; ok && p.State == bridge.Online {
			p.Since = time.Now()
			pb.m[self.Route] = p
		}
	}
	for _, p := range pb.m {
		if err := send(p); err != nil {
			return p.Route, err
		}
	}
	return "", nil
}
