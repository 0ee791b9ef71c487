package rcsource

import (
	"context"
	"fmt"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
)

// The subscription services wait for rc's publish engine (issue 4). Until
// it lands, Subscribe answers BadServiceUnsupported, which the bridge logs
// as a refused subscription; commands and presence work.

// Subscribe implements bridge.Client.
func (c *client) Subscribe(ctx context.Context, spec bridge.SubscriptionSpec) (uint32, []ua.StatusCode, error) {
	return 0, nil, fmt.Errorf("rcsource: subscriptions need rc's publish engine: %w", ua.StatusBadServiceUnsupported)
}

// Notifications implements bridge.Client.
func (c *client) Notifications() <-chan bridge.Notification { return nil }
