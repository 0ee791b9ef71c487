package bridge

import (
	"context"
	"encoding/json"
	"time"
)

// Event is a message the bridge publishes about a server on its events
// route, `<status route>.events` (NATS) or `<status route>/events` (MQTT).
// Today the only event is "gap": NotificationMessages From..To of a
// subscription that the server could no longer deliver, so values changed
// on the machine may be missing on the bus.
type Event struct {
	// Server is the ServerUri.
	Server string `json:"server"`
	// Event is the kind of event: "gap".
	Event string `json:"event"`
	// Subscription is the OPC UA SubscriptionId the gap is in.
	Subscription uint32 `json:"subscription"`
	// From and To are the lost sequence numbers; 0 when unknown.
	From uint32 `json:"from"`
	To   uint32 `json:"to"`
	// Recreated says the server had lost the session, so everything since
	// the last delivered message may be missing.
	Recreated bool `json:"recreated"`
	// Reason says why.
	Reason string `json:"reason,omitempty"`
	// Time is when the bridge noticed, RFC 3339 UTC.
	Time time.Time `json:"time"`
}

// gapEvent returns the payload of a gap event.
func gapEvent(s *supervisor, sub uint32, g Gap) []byte {
	b, err := json.Marshal(Event{
		Server: s.uri, Event: "gap", Subscription: sub, From: g.From, To: g.To,
		Recreated: g.Recreated, Reason: g.Reason, Time: time.Now().UTC(),
	})
	if err != nil {
		// Event has only plain fields: Marshal cannot fail.
		panic("bridge: encoding a gap event: " + err.Error())
	}
	return b
}

// publishEvent publishes payload on the server's events route, at least
// once; a failure is logged.
func (s *supervisor) publishEvent(ctx context.Context, payload []byte) {
	msg := []Message{{Route: s.eventsRoute, Payload: payload, QoS: AtLeastOnce}}
	err := s.b.cfg.Publisher.Publish(ctx, msg, func(err error) {
		if err != nil {
			s.log.Warn("event not confirmed by the bus", "route", s.eventsRoute, "err", err)
		}
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("event not published", "route", s.eventsRoute, "err", err)
	}
}

// kvKey turns a server key into a valid JetStream KV key
// ([-/_=a-zA-Z0-9.]): every other byte, '=' and '.' become "=XX" (hex), so
// different server keys give different KV keys.
func kvKey(key string) string {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '/':
			out = append(out, c)
		default:
			out = append(out, '=', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}
