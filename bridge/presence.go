package bridge

import (
	"encoding/json"
	"fmt"
	"time"
)

// PresenceState is the state of an OPC UA server as seen by the bridge
// (DESIGN decision 9). Its text form is used in presence payloads.
type PresenceState uint8

// The presence states.
const (
	// Offline: no session; values on the bus are stale.
	Offline PresenceState = iota
	// Resuming: the socket dropped and the bridge keeps the session,
	// waiting for the server's next ReverseHello; values may be stale.
	Resuming
	// Online: a session is active and values are current.
	Online
)

var presenceNames = [...]string{Offline: "offline", Resuming: "resuming", Online: "online"}

// String returns "offline", "resuming" or "online".
func (s PresenceState) String() string {
	if int(s) < len(presenceNames) {
		return presenceNames[s]
	}
	return fmt.Sprintf("PresenceState(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s PresenceState) MarshalText() ([]byte, error) {
	if int(s) >= len(presenceNames) {
		return nil, fmt.Errorf("bridge: presence state %d: unknown", uint8(s))
	}
	return []byte(presenceNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *PresenceState) UnmarshalText(b []byte) error {
	for i, n := range presenceNames {
		if string(b) == n {
			*s = PresenceState(i)
			return nil
		}
	}
	return fmt.Errorf("bridge: presence state %q: want offline, resuming or online", b)
}

// Presence is one presence announcement. Route and Key are rendered by the
// mapping package (`<prefix>.status.<server key>` / `<prefix>/status/<server
// key>`, and the server key); the payload is Presence's JSON form
// {"server":…,"state":…,"since":…}.
type Presence struct {
	// Route is the status subject or topic.
	Route string `json:"-"`
	// Key names the entry in the JetStream presence bucket (the server
	// key); it must be a valid KV key ([-/_=.a-zA-Z0-9]+).
	Key string `json:"-"`
	// Server is the ServerUri (or, for the bridge's own status, its name).
	Server string `json:"server,omitempty"`
	// State is the current state.
	State PresenceState `json:"state"`
	// Since is when the state began; the zero time is omitted (an MQTT
	// last will cannot know when it will fire).
	Since time.Time `json:"-"`
}

// presenceJSON is the wire form of Presence.
type presenceJSON struct {
	Server string        `json:"server,omitempty"`
	State  PresenceState `json:"state"`
	Since  string        `json:"since,omitempty"`
}

// MarshalJSON encodes p as {"server":…,"state":…,"since":RFC 3339 UTC}.
func (p Presence) MarshalJSON() ([]byte, error) {
	w := presenceJSON{Server: p.Server, State: p.State}
	if !p.Since.IsZero() {
		w.Since = p.Since.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the form written by MarshalJSON (Route and Key stay
// unset).
func (p *Presence) UnmarshalJSON(b []byte) error {
	var w presenceJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("bridge: presence: %w", err)
	}
	var since time.Time
	if w.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, w.Since)
		if err != nil {
			return fmt.Errorf("bridge: presence since %q: %w", w.Since, err)
		}
		since = t
	}
	*p = Presence{Server: w.Server, State: w.State, Since: since}
	return nil
}
