package mqttbus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

// PublishPresence implements bridge.PresencePublisher: a retained QoS 1
// message on p.Route.
func (b *Bus) PublishPresence(ctx context.Context, p bridge.Presence) error {
	if err := validTopic(p.Route); err != nil {
		return fmt.Errorf("mqttbus: presence: %w: %w", bridge.ErrInvalidMessage, err)
	}
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		return fmt.Errorf("mqttbus: presence: %w", bridge.ErrClosed)
	}
	return b.announce(ctx, p)
}

// announce records p as the latest presence of its route and sends it.
func (b *Bus) announce(ctx context.Context, p bridge.Presence) error {
	return b.presence.Announce(p, func(p bridge.Presence) error { return b.sendPresence(ctx, p) })
}

// sendPresence publishes p retained. Called under the presence book's lock.
func (b *Bus) sendPresence(ctx context.Context, p bridge.Presence) error {
	payload, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("mqttbus: presence %q: %w", p.Route, err)
	}
	return b.publishTracked(ctx, p.Route, bridge.AtLeastOnce, true, payload)
}

// republish sends every recorded presence again after a reconnect (the
// broker may have lost its retained messages); the bridge's own status
// says online since now, replacing the last will the broker may have
// published.
func (b *Bus) republish() {
	route, err := b.presence.Republish(b.o.Self, func(p bridge.Presence) error {
		ctx, cancel := context.WithTimeout(context.Background(), b.o.AckTimeout)
		defer cancel()
		return b.sendPresence(ctx, p)
	})
	if err != nil {
		b.log.Warn("presence not re-sent; retrying", "topic", route, "err", err)
		b.repub.Store(true)
		b.retryLater(time.Second)
	}
}
