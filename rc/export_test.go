package rc

import (
	"context"

	"github.com/gopcua/opcua/ua"
)

// Send exposes the raw request path to the black-box tests.
func Send(ctx context.Context, c *Client, req ua.Request) (ua.Response, error) {
	return c.send(ctx, c.ch.Load(), req, 0)
}

// Emit reports ev as if the client's publish engine had.
func Emit(c *Client, ev ClientEvent) { c.emit(ev) }
