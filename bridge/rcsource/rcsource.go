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
	// Factories build the client session of each server, by ServerUri
	// (servers differ in security and identity). A server without an
	// entry uses Factory.
	Factories map[string]*rc.Factory
	// Factory is the factory of servers without an entry in Factories;
	// nil means such servers cannot connect.
	Factory *rc.Factory
	// Logger receives the adapter's logs; nil discards them.
	Logger *slog.Logger
}

// Source implements bridge.Source with package rc. It is safe for
// concurrent use.
type Source struct {
	cfg Config
	log *slog.Logger
}

var _ bridge.Source = (*Source)(nil)

// New returns a Source.
func New(cfg Config) (*Source, error) {
	var errs []error
	if cfg.Sessions == nil {
		errs = append(errs, fmt.Errorf("%w: Sessions is required", ErrInvalidConfig))
	}
	for uri, f := range cfg.Factories {
		if f == nil {
			errs = append(errs, fmt.Errorf("%w: Factories[%q] is nil", ErrInvalidConfig, uri))
		}
	}
	if cfg.Factory == nil && len(cfg.Factories) == 0 {
		errs = append(errs, fmt.Errorf("%w: no Factory and no Factories", ErrInvalidConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, log: log}, nil
}

// factory returns the factory of serverURI.
func (s *Source) factory(serverURI string) (*rc.Factory, error) {
	if f, ok := s.cfg.Factories[serverURI]; ok {
		return f, nil
	}
	if s.cfg.Factory != nil {
		return s.cfg.Factory, nil
	}
	return nil, fmt.Errorf("rcsource: no factory for server %q: %w", serverURI, ErrInvalidConfig)
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
		return newClient(s, c), nil
	}
}

// client implements bridge.Client on an *rc.Client.
type client struct {
	src *Source
	c   *rc.Client
}

var _ bridge.Client = (*client)(nil)

func newClient(src *Source, c *rc.Client) *client {
	return &client{src: src, c: c}
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

// Close implements bridge.Client.
func (c *client) Close(ctx context.Context) error { return c.c.Close(ctx) }
