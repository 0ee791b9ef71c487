// Package rcsource is the OPC UA side of the bridge: it satisfies
// bridge.Source and bridge.Client with package rc, taking each server's
// reverse connections from an rc.Broker and running the sessions with an
// rc.Factory per server.
package rcsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/rc"
)

// ErrInvalidConfig is wrapped by the errors of New.
var ErrInvalidConfig = errors.New("rcsource: invalid config")

// Sessions hands out the admitted reverse connections of one server at a
// time; *rc.Broker satisfies it. Next blocks until a connection of
// serverURI is there or ctx ends, and the caller owns what it returns.
type Sessions interface {
	Next(ctx context.Context, serverURI string) (*rc.Session, error)
}

// Config configures a Source.
type Config struct {
	// Sessions is where reverse connections come from: the rc.Broker
	// running on the daemon's listener. Required.
	Sessions Sessions
	// Clients configure the client session of each server, by ServerUri
	// (servers differ in security and identity). A server without an
	// entry uses Default; with no Default it cannot connect. The Source
	// makes one rc.Factory per server and sets its OnClientEvent (a
	// callback given here is called too).
	Clients map[string]rc.ClientConfig
	Default *rc.ClientConfig
	// Logger receives the adapter's logs; nil discards them.
	Logger *slog.Logger
}

// Source implements bridge.Source with package rc. It is safe for
// concurrent use.
type Source struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	factories map[string]*rc.Factory
	clients   map[*rc.Client]*client // the open clients, for their events
}

var _ bridge.Source = (*Source)(nil)

// New checks every client configuration and returns a Source.
func New(cfg Config) (*Source, error) {
	var errs []error
	if cfg.Sessions == nil {
		errs = append(errs, fmt.Errorf("%w: Sessions is required", ErrInvalidConfig))
	}
	if cfg.Default == nil && len(cfg.Clients) == 0 {
		errs = append(errs, fmt.Errorf("%w: no Default and no Clients", ErrInvalidConfig))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, log: log, factories: make(map[string]*rc.Factory), clients: make(map[*rc.Client]*client)}
	for _, uri := range slices.Sorted(maps.Keys(cfg.Clients)) {
		f, err := s.newFactory(cfg.Clients[uri])
		if err != nil {
			errs = append(errs, fmt.Errorf("rcsource: client config of %q: %w", uri, err))
			continue
		}
		s.factories[uri] = f
	}
	if cfg.Default != nil {
		if err := cfg.Default.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rcsource: default client config: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// newFactory makes the factory of one server, with the events that become
// gap notifications routed to the client they are about (rc logs every
// event itself).
func (s *Source) newFactory(cc rc.ClientConfig) (*rc.Factory, error) {
	user := cc.OnClientEvent
	cc.OnClientEvent = func(ev rc.ClientEvent) {
		switch ev.Kind {
		case rc.PublishGap, rc.PublishRecreated:
			s.mu.Lock()
			c := s.clients[ev.Client]
			s.mu.Unlock()
			if c != nil {
				c.event(ev)
			}
		}
		if user != nil {
			user(ev)
		}
	}
	return rc.NewFactory(cc)
}

// factory returns the factory of serverURI, making it from Default on
// first use.
func (s *Source) factory(serverURI string) (*rc.Factory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.factories[serverURI]; ok {
		return f, nil
	}
	if s.cfg.Default == nil {
		return nil, fmt.Errorf("rcsource: no client config for server %q: %w", serverURI, ErrInvalidConfig)
	}
	f, err := s.newFactory(*s.cfg.Default)
	if err != nil {
		return nil, err
	}
	s.factories[serverURI] = f
	return f, nil
}

// Connect implements bridge.Source: it takes the server's next reverse
// connection and builds a session on it. When the factory used the
// connection to discover the server's endpoints (rc.ErrRedialNeeded), it
// waits for the server's next connection and builds the secure session
// there.
func (s *Source) Connect(ctx context.Context, serverURI string) (bridge.Client, error) {
	f, err := s.factory(serverURI)
	if err != nil {
		return nil, err
	}
	for {
		sess, err := s.cfg.Sessions.Next(ctx, serverURI)
		if err != nil {
			return nil, fmt.Errorf("rcsource: waiting for %q: %w", serverURI, err)
		}
		c, err := f.Build(ctx, sess)
		if errors.Is(err, rc.ErrRedialNeeded) {
			s.log.Info("server endpoints discovered; the secure session starts on its next connection", "server_uri", serverURI)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("rcsource: session with %q: %w", serverURI, err)
		}
		return s.newClient(serverURI, c), nil
	}
}

// client implements bridge.Client on an *rc.Client.
type client struct {
	src *Source
	uri string
	c   *rc.Client

	out     chan bridge.Notification
	events  chan *rc.ClientEvent // pointers: the buffer is allocated with every session
	stop    chan struct{}
	fwdOnce sync.Once
	wg      sync.WaitGroup

	mu      sync.Mutex
	handles []uint32 // by rc's client handle: the bridge's handle + 1; 0 unknown
	closed  bool
}

var _ bridge.Client = (*client)(nil)

// newClient wraps c and registers it for its events.
func (s *Source) newClient(serverURI string, c *rc.Client) *client {
	cl := &client{src: s, uri: serverURI, c: c, out: make(chan bridge.Notification),
		events: make(chan *rc.ClientEvent, maxEvents), stop: make(chan struct{})}
	s.mu.Lock()
	s.clients[c] = cl
	s.mu.Unlock()
	return cl
}

// NamespaceArray implements mapping.Resolver: it reads the array again, as
// servers may add namespaces at run time.
func (c *client) NamespaceArray(ctx context.Context) ([]string, error) {
	return c.c.RefreshNamespaces(ctx)
}

// TranslateBrowsePaths implements mapping.Resolver.
func (c *client) TranslateBrowsePaths(ctx context.Context, paths []*ua.BrowsePath) ([]*ua.BrowsePathResult, error) {
	res, err := c.c.TranslateBrowsePaths(ctx, &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: paths})
	if err != nil {
		return nil, err
	}
	return res.Results, nil
}

// ReadVariableInfo implements bridge.Client: rc's VariableInfo and the
// current values.
func (c *client) ReadVariableInfo(ctx context.Context, nodes []*ua.NodeID) ([]bridge.VariableInfo, error) {
	infos, err := c.c.ReadVariableInfo(ctx, nodes...)
	if err != nil {
		return nil, err
	}
	values, err := c.c.ReadValues(ctx, nodes...)
	if err != nil {
		return nil, err
	}
	if len(infos) != len(nodes) || len(values) != len(nodes) {
		return nil, fmt.Errorf("rcsource: %d variable infos and %d values for %d nodes: %w", len(infos), len(values), len(nodes), rc.ErrUnexpectedResponse)
	}
	out := make([]bridge.VariableInfo, len(nodes))
	for i, in := range infos {
		out[i] = bridge.VariableInfo{
			DataType:        in.DataType,
			BuiltinType:     in.BuiltinType,
			ValueRank:       in.ValueRank,
			AccessLevel:     in.AccessLevel,
			UserAccessLevel: in.UserAccessLevel,
			Status:          in.Status,
		}
		if dv := values[i]; dv != nil && dv.Status&0x80000000 == 0 {
			out[i].Value = dv.Value
		}
	}
	return out, nil
}

// Write implements bridge.Client.
func (c *client) Write(ctx context.Context, node *ua.NodeID, value *ua.Variant) (ua.StatusCode, error) {
	return c.c.WriteValue(ctx, node, value)
}

// Call implements bridge.Client.
func (c *client) Call(ctx context.Context, object, method *ua.NodeID, args []*ua.Variant) (*ua.CallMethodResult, error) {
	return c.c.CallMethod(ctx, object, method, args...)
}

// Done implements bridge.Client.
func (c *client) Done() <-chan struct{} { return c.c.Done() }

// Err implements bridge.Client.
func (c *client) Err() error { return c.c.Err() }

// Resume implements bridge.Client: it takes the server's next reverse
// connection and moves the session onto it.
func (c *client) Resume(ctx context.Context) (bridge.ResumeOutcome, error) {
	uri := c.c.ServerURI()
	sess, err := c.src.cfg.Sessions.Next(ctx, uri)
	if err != nil {
		return 0, fmt.Errorf("rcsource: waiting for %q: %w", uri, err)
	}
	out, err := c.c.Resume(ctx, sess)
	if err != nil {
		return 0, fmt.Errorf("rcsource: resuming the session with %q: %w", uri, err)
	}
	if out == rc.SessionRecreated {
		return bridge.SessionRecreated, nil
	}
	return bridge.SessionResumed, nil
}

// Close implements bridge.Client: it stops the forwarder and closes the
// rc client.
func (c *client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.src.mu.Lock()
	delete(c.src.clients, c.c)
	c.src.mu.Unlock()
	close(c.stop)
	err := c.c.Close(ctx)
	c.wg.Wait()
	return err
}
