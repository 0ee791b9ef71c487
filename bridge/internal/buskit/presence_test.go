package buskit

import (
	"errors"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

func TestPresenceBook(t *testing.T) {
	var pb PresenceBook
	old := time.Now().Add(-time.Hour)
	self := bridge.Presence{Route: "p.status.rcbridge", State: bridge.Online, Since: old}
	line1 := bridge.Presence{Route: "p.status.line1", State: bridge.Offline, Since: old}
	var sent []bridge.Presence
	send := func(p bridge.Presence) error { sent = append(sent, p); return nil }
	for _, p := range []bridge.Presence{self, line1, {Route: line1.Route, State: bridge.Online, Since: old}} {
		if err := pb.Announce(p, send); err != nil {
			t.Fatal(err)
		}
	}
	if len(sent) != 3 {
		t.Fatalf("Announce sent %d presences, want 3", len(sent))
	}

	sent = nil
	if route, err := pb.Republish(&self, send); err != nil {
		t.Fatalf("Republish: %s: %v", route, err)
	}
	got := map[string]bridge.Presence{}
	for _, p := range sent {
		got[p.Route] = p
	}
	if len(sent) != 2 || got[line1.Route].State != bridge.Online {
		t.Fatalf("Republish sent %+v, want the latest presence of both routes", sent)
	}
	if !got[self.Route].Since.After(old) {
		t.Errorf("own online presence not re-dated: since %v", got[self.Route].Since)
	}
	if !got[line1.Route].Since.Equal(old) {
		t.Errorf("a server's presence was re-dated: since %v", got[line1.Route].Since)
	}

	boom := errors.New("broker gone")
	calls := 0
	route, err := pb.Republish(nil, func(bridge.Presence) error { calls++; return boom })
	if !errors.Is(err, boom) || route == "" || calls != 1 {
		t.Fatalf("Republish with a failing send: route %q, err %v, %d calls; want the first failure only", route, err, calls)
	}
}
