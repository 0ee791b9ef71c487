package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rcbridge/rcbridge/bridge"
)

// PublishPresence implements bridge.PresencePublisher.
func (b *Bus) PublishPresence(ctx context.Context, p bridge.Presence) error {
	if err := validSubject(p.Route); err != nil {
		return fmt.Errorf("natsbus: presence: %w: %w", bridge.ErrInvalidMessage, err)
	}
	if b.kv != nil && !validKVKey(p.Key) {
		return fmt.Errorf("natsbus: presence key %q: not a KV key: %w", p.Key, bridge.ErrInvalidMessage)
	}
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		return fmt.Errorf("natsbus: presence: %w", bridge.ErrClosed)
	}
	return b.announce(ctx, p)
}

// announce records p as the latest presence of its route and sends it.
func (b *Bus) announce(ctx context.Context, p bridge.Presence) error {
	return b.presence.Announce(p, func(p bridge.Presence) error { return b.sendPresence(ctx, p) })
}

// sendPresence publishes p and, in JetStream mode, writes it to the
// presence bucket. Called under the presence book's lock.
func (b *Bus) sendPresence(ctx context.Context, p bridge.Presence) error {
	payload, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("natsbus: presence %q: %w", p.Route, err)
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("natsbus: presence %q: %w", p.Route, bridge.ErrNotConnected)
	}
	ctx, cancel := withDefaultTimeout(ctx, b.o.FlushTimeout)
	defer cancel()
	if err := b.nc.Publish(p.Route, payload); err != nil {
		return fmt.Errorf("natsbus: presence %q: %w", p.Route, natsErr(err))
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("natsbus: presence %q: %w", p.Route, natsErr(err))
	}
	if b.kv != nil {
		if _, err := b.kv.Put(ctx, p.Key, payload); err != nil {
			return fmt.Errorf("natsbus: presence bucket key %q: %w", p.Key, natsErr(err))
		}
	}
	return nil
}

// republish sends every recorded presence again after a reconnect; the
// bridge's own status says online since now.
func (b *Bus) republish() {
	route, err := b.presence.Republish(b.o.Self, func(p bridge.Presence) error {
		ctx, cancel := context.WithTimeout(b.base, b.o.FlushTimeout)
		defer cancel()
		return b.sendPresence(ctx, p)
	})
	if err != nil {
		b.log.Warn("presence not re-sent; retrying", "route", route, "err", err)
		b.repub.Store(true)
		time.AfterFunc(time.Second, b.poke)
	}
}

// refreshPresence writes every recorded presence to the bucket again every
// PresenceTTL/3, so that the entries outlive their TTL while the bridge
// runs and expire after it crashed.
func (b *Bus) refreshPresence() {
	t := time.NewTicker(b.o.JetStream.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-b.stopCh:
			return
		case <-t.C:
		}
		if !b.nc.IsConnected() {
			continue // the reconnect writes every entry again
		}
		route, err := b.presence.Republish(nil, func(p bridge.Presence) error {
			payload, err := json.Marshal(p)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(b.base, b.o.FlushTimeout)
			defer cancel()
			_, err = b.kv.Put(ctx, p.Key, payload)
			return err
		})
		if err != nil {
			b.log.Warn("presence bucket not refreshed", "route", route, "err", natsErr(err))
		}
	}
}

// withDefaultTimeout gives ctx a deadline when it has none (nats.go's
// flush needs one).
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// natsErr maps nats.go's "cannot send now" errors to ErrNotConnected.
func natsErr(err error) error {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return fmt.Errorf("%w: %w", bridge.ErrNotConnected, err)
	}
	return err
}
