package rc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"
)

// ErrUnexpectedResponse means the server answered a request with a response
// of the wrong type or shape (for example fewer results than operations).
var ErrUnexpectedResponse = errors.New("rc: unexpected response")

// Client is an OPC UA client session on a reverse connection, built by
// Factory.Build.
//
// The session state (authentication token, server nonce and certificate,
// endpoints, namespace array, operation limits) is kept apart from the
// channel (socket and secure channel) it currently runs on.
//
// All methods are safe for concurrent use; requests from several goroutines
// are multiplexed on the channel. Every service call takes a context: its
// deadline bounds the call, and without one ClientConfig.RequestTimeout
// applies. A Bad service result is returned as an error wrapping the
// ua.StatusCode and leaves the client usable; only a network failure ends
// the connection (see Done).
type Client struct {
	f         *Factory
	cfg       *ClientConfig // f.cfg
	log       *slog.Logger
	serverURI string
	endpoint  string

	ch     atomic.Pointer[channel]
	sess   sessionState
	closed atomic.Bool
	lifeMu sync.Mutex // serializes Close and Resume
	track  tracker    // state and events

	infoMu     sync.RWMutex
	namespaces []string
	limits     OperationLimits

	typesMu sync.Mutex
	types   map[string]ua.TypeID // DataType NodeId → built-in type

	pubOnce sync.Once
	pub     atomic.Pointer[publisher] // nil until the first Subscribe
	handles atomic.Uint32             // client handles of monitored items
}

func (c *Client) nextHandle() uint32 { return c.handles.Add(1) }

// ServerURI returns the ServerUri of the reverse connection.
func (c *Client) ServerURI() string { return c.serverURI }

// EndpointURL returns the EndpointUrl of the reverse connection.
func (c *Client) EndpointURL() string { return c.endpoint }

// SessionID returns the session's id assigned by the server.
func (c *Client) SessionID() *ua.NodeID {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.id
}

// Done returns a channel that is closed when the client's connection ends:
// the socket failed or the server closed it, or Close was called. Err then
// says which.
func (c *Client) Done() <-chan struct{} {
	return c.ch.Load().ended
}

// Err returns nil while the connection is up, an error wrapping
// ErrConnectionLost after a network failure, or ErrClosed after Close.
func (c *Client) Err() error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.ch.Load().err()
}

// Close closes the session (CloseSession with DeleteSubscriptions), the
// secure channel and the socket. ctx bounds the goodbye: when it expires,
// the socket is closed regardless. Close reports ClientClosed and returns
// when every goroutine of the client has returned and the event callback
// has taken the last event (within ctx). A lost connection is not an error
// here (the server drops the session when it times out). Calling Close
// again returns nil.
func (c *Client) Close(ctx context.Context) error {
	c.lifeMu.Lock()
	if c.closed.Swap(true) {
		c.lifeMu.Unlock()
		return nil
	}
	err := c.closeWithSession(ctx)
	c.emit(ClientEvent{Kind: ClientClosed, Err: err})
	c.lifeMu.Unlock()
	c.awaitEvents(ctx)
	if errors.Is(err, ErrConnectionLost) {
		return nil
	}
	return err
}

// closeWithSession closes the session if the channel is up, then the
// channel. It returns why the session could not be closed: the CloseSession
// error or the cause of an earlier connection loss.
func (c *Client) closeWithSession(ctx context.Context) error {
	c.closed.Store(true)
	if p := c.pub.Load(); p != nil {
		p.shutdown()
	}
	ch := c.ch.Load()
	if ch == nil {
		return nil
	}
	err := ch.err()
	if err == nil {
		_, err = call[*ua.CloseSessionResponse](ctx, c, &ua.CloseSessionRequest{DeleteSubscriptions: true})
	}
	ch.close(ctx)
	return err
}

// call sends req on the current channel and returns the response as T.
// See send.
func call[T ua.Response](ctx context.Context, c *Client, req ua.Request) (T, error) {
	return callOn[T](ctx, c, c.ch.Load(), req)
}

// callOn is call on a given channel, for setting up a channel that is not
// the current one yet.
func callOn[T ua.Response](ctx context.Context, c *Client, ch *channel, req ua.Request) (T, error) {
	return callWithin[T](ctx, c, ch, req, 0)
}

// callWithin is callOn with a timeout that applies when ctx has no
// deadline, instead of RequestTimeout; 0 means RequestTimeout. It saves a
// context timer per call where the caller's ctx has none (Publish).
func callWithin[T ua.Response](ctx context.Context, c *Client, ch *channel, req ua.Request, timeout time.Duration) (T, error) {
	var zero T
	resp, err := c.send(ctx, ch, req, timeout)
	if err != nil {
		return zero, err
	}
	r, ok := resp.(T)
	if !ok {
		return zero, fmt.Errorf("%w: %s answered with %T", ErrUnexpectedResponse, serviceName(req), resp)
	}
	return r, nil
}

// send sends req on ch with the session's authentication token and waits
// for the response within ctx's deadline, or timeout when ctx has none, or
// RequestTimeout when timeout is 0 too.
//
// Error classes: a Bad ServiceResult (or ServiceFault) wraps the
// ua.StatusCode and leaves the channel up; ctx expiry wraps ctx.Err(); a
// network failure ends the channel and wraps ErrConnectionLost.
func (c *Client) send(ctx context.Context, ch *channel, req ua.Request, timeout time.Duration) (_ ua.Response, err error) {
	if ch == nil {
		return nil, fmt.Errorf("rc: %s: %w", serviceName(req), ErrClosed)
	}
	if err := ch.err(); err != nil {
		return nil, fmt.Errorf("rc: %s: %w", serviceName(req), err)
	}
	// Without a ctx deadline, gopcua's own timer (timeout plus a leniency)
	// bounds the wait; it reports StatusBadTimeout.
	if timeout == 0 {
		timeout = c.cfg.RequestTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("rc: %s: %w", serviceName(req), context.DeadlineExceeded)
	}
	defer func() {
		// gopcua's encoder panics on some nil fields the validators did not
		// catch. The request's sequence number is spent, so the channel
		// cannot go on without a gap: end it.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: encoding failed: %v", ErrInvalidRequest, serviceName(req), r)
			ch.end(err)
			ch.shutdown()
		}
	}()
	var resp ua.Response
	err = ch.sc.SendRequestWithTimeout(ctx, req, c.sess.token(), timeout, func(r ua.Response) error {
		resp = r
		return nil
	})
	if err == nil {
		return resp, nil
	}
	name := serviceName(req)
	var status ua.StatusCode
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("rc: %s: %w", name, ctx.Err())
	case errors.As(err, &status) && resp != nil:
		return nil, fmt.Errorf("rc: %s: service result: %w", name, status)
	case errors.Is(err, ua.StatusBadTimeout):
		return nil, fmt.Errorf("rc: %s: no response within %s: %w", name, timeout, context.DeadlineExceeded)
	case errors.As(err, &status):
		return nil, fmt.Errorf("rc: %s: request failed: %w", name, status)
	case isConnectionLost(err):
		ch.end(err)
		ch.shutdown()
		return nil, fmt.Errorf("rc: %s: %w", name, ch.err())
	}
	return nil, fmt.Errorf("rc: %s: %w", name, err)
}

// serviceName returns "Read" for a *ua.ReadRequest.
func serviceName(req ua.Request) string {
	return strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", req), "*ua."), "Request")
}
