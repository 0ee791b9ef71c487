package rc

import (
	"context"

	"github.com/gopcua/opcua/ua"
)

// Send exposes the raw request path to the black-box tests.
func Send(ctx context.Context, c *Client, req ua.Request) (ua.Response, error) {
	return c.send(ctx, c.ch.Load(), req, 0)
}
