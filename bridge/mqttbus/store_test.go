package mqttbus

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestStoreResumed follows paho's calls on a new connection: dial, list
// the store, fetch the listed keys in order. The store reports resumed
// only once the last listed key was fetched (or nothing was listed).
func TestStoreResumed(t *testing.T) {
	pub := func(id uint16) packets.ControlPacket {
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.Qos, p.MessageID, p.TopicName = 1, id, "t"
		return p
	}
	for _, tc := range []struct {
		name   string
		stored []string // outbound keys stored before the dial
	}{
		{"empty store", nil},
		{"one message", []string{"o.1"}},
		{"several messages", []string{"o.7", "o.2", "o.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resumedCalls := 0
			s := newAckStore(func(*pubRec) {}, func(int) {}, func() { resumedCalls++ })
			for i, k := range tc.stored {
				s.arm(&pubRec{})
				s.Put(k, pub(uint16(i+1)))
			}
			if !s.resumed() {
				t.Fatalf("resumed before any dial = false, want true")
			}
			s.expectResume()
			if s.resumed() {
				t.Fatalf("resumed right after a dial = true, want false")
			}
			keys := s.All()
			if len(keys) != len(tc.stored) {
				t.Fatalf("All() = %q, want the %d stored keys", keys, len(tc.stored))
			}
			for i, k := range keys {
				if s.resumed() {
					t.Fatalf("resumed before key %d of %d was fetched", i+1, len(keys))
				}
				// An acknowledgement while paho fetches does not end the
				// wait: only paho's fetch of the last key does.
				s.Del(k)
				if s.resumed() {
					t.Fatalf("resumed after acknowledging key %q before paho fetched it", k)
				}
				_ = s.Get(k)
			}
			if !s.resumed() {
				t.Errorf("resumed after every listed key was fetched = false, want true")
			}
			if resumedCalls != 1 {
				t.Errorf("onResumed called %d times, want 1", resumedCalls)
			}
			// A second dial waits again, and a listing on it ends the wait.
			s.expectResume()
			if s.resumed() {
				t.Errorf("resumed after a second dial = true, want false")
			}
			if keys := s.All(); len(keys) != 0 {
				t.Fatalf("All() after every key was deleted = %q", keys)
			}
			if !s.resumed() {
				t.Errorf("resumed after an empty listing = false, want true")
			}
		})
	}
}
