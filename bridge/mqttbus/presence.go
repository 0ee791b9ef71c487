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
	b.pmu.Lock()
	defer b.pmu.Unlock()
	b.presence[p.Route] = p
	return b.sendPresence(ctx, p)
}

// sendPresence publishes p retained. Caller holds pmu.
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
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if self := b.o.Self; self != nil {
		if p, ok := b.presence[self.Route]; ok && p.State == bridge.Online {
			p.Since = time.Now()
			b.presence[self.Route] = p
		}
	}
	for _, p := range b.presence {
		ctx, cancel := context.WithTimeout(context.Background(), b.o.AckTimeout)
		err := b.sendPresence(ctx, p)
		cancel()
		if err != nil {
			b.log.Warn("presence not re-sent; retrying", "topic", p.Route, "err", err)
			b.repub.Store(true)
			b.retryLater(time.Second)
			return
		}
	}
}
