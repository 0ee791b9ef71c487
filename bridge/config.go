package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/rcbridge/rcbridge/mapping"
)

// Errors of the bridge. Command replies carry them (wrapped, with details)
// in their "error" text; callers test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
	ErrInvalidConfig = errors.New("bridge: invalid config")
	// ErrUnknownRoute means a command arrived on a route that is not a
	// command route of the mapping table.
	ErrUnknownRoute = errors.New("bridge: no such command route")
	// ErrNotWritable means a command targets a row that is not writable
	// in the mapping, or a node whose access level forbids writing.
	ErrNotWritable = errors.New("bridge: not writable")
	// ErrOffline means the command's server has no active session.
	ErrOffline = errors.New("bridge: server not connected")
	// ErrRateLimited means the server's command rate limit was exceeded.
	ErrRateLimited = errors.New("bridge: command rate limit exceeded")
	// ErrBusy means the server's command queue was full.
	ErrBusy = errors.New("bridge: command queue full")
	// ErrUnavailable means the command's node or method did not resolve in
	// the current session, or its type could not be determined.
	ErrUnavailable = errors.New("bridge: command target unavailable")
)

// Defaults for zero fields of Config and ServerConfig.
const (
	DefaultPublishingInterval      = 500 * time.Millisecond
	DefaultMaxItemsPerSubscription = 1000
	DefaultCommandRate             = 10
	DefaultCommandBurst            = 20
	DefaultCommandQueue            = 64
	DefaultRejectQueue             = 256
	DefaultCommandTimeout          = 10 * time.Second
	DefaultResumeTimeout           = time.Minute
	DefaultShutdownTimeout         = 5 * time.Second
	DefaultMinRetryDelay           = 100 * time.Millisecond
	DefaultMaxRetryDelay           = 10 * time.Second
	DefaultDedupWindow             = time.Minute
	DefaultDedupSize               = 4096
)

// Config configures a Bridge. Table, Source and Publisher are required;
// zero durations and sizes take the defaults above.
type Config struct {
	// Table is the mapping: the servers (one supervisor each), the items
	// to publish, the command routes.
	Table *mapping.Table
	// Servers are the per-server settings; a server of the Table without
	// an entry takes the defaults. Every entry must name a server of the
	// Table.
	Servers []ServerConfig

	// Source opens the client sessions.
	Source Source
	// Publisher carries the data and gap events.
	Publisher Publisher
	// Presence carries the servers' presence; nil publishes none.
	Presence PresencePublisher
	// Commands delivers commands; nil means the bridge accepts none.
	Commands CommandSource

	// ResumeTimeout is how long a session whose connection dropped waits
	// for the server's next reverse connection before it is closed and the
	// server shown offline. Default DefaultResumeTimeout.
	ResumeTimeout time.Duration
	// CommandTimeout bounds one write or call and the sending of its
	// reply. Default DefaultCommandTimeout.
	CommandTimeout time.Duration
	// CommandQueue is how many commands wait per server. Default
	// DefaultCommandQueue. A command arriving when it is full is answered
	// with ErrBusy.
	CommandQueue int
	// RejectQueue is how many refusals wait for their reply (shared).
	// Default DefaultRejectQueue. When it is full a refused command is
	// dropped without a reply and counted (Metrics.RejectsDropped).
	RejectQueue int
	// ShutdownTimeout bounds closing the sessions and publishing the last
	// presence when Run's context ends. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MinRetryDelay and MaxRetryDelay bound the pause after a failed
	// session setup, doubling from the first to the second. Defaults
	// DefaultMinRetryDelay, DefaultMaxRetryDelay.
	MinRetryDelay, MaxRetryDelay time.Duration
	// NoReadOnlyRoutes turns off the answers to writes on read-only rows.
	// By default the bridge also listens on the route a write to a
	// published but read-only row would use (its data route + "set"), so
	// that such a write gets a reply saying the row is not writable.
	NoReadOnlyRoutes bool
	// NoUnknownRoutes turns off the answers to commands on unknown routes.
	// By default the bridge also subscribes the Table's CommandFilters
	// ("<prefix>.*.*.set" and the like), so that a command on a route in
	// the shape of a command route that no row declares gets a reply
	// saying so (BadNodeIdUnknown) instead of none. Turn it off when
	// bridges with different mappings share one prefix: each would answer
	// the others' commands as unknown.
	NoUnknownRoutes bool

	// DedupWindow is how long a command with a correlation id is
	// remembered so that a copy of it (MQTT QoS 1 delivers at least once;
	// a client may retry) is answered again instead of carried out twice:
	// same route, same id, same body. Default DefaultDedupWindow; negative
	// turns the de-duplication off.
	DedupWindow time.Duration
	// DedupSize bounds the commands remembered; the oldest are forgotten
	// first. Default DefaultDedupSize.
	DedupSize int

	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
	// Metrics are optional hooks.
	Metrics Metrics
}

// ServerConfig holds the settings of one server.
type ServerConfig struct {
	// URI is the ServerUri, exactly as in the Table.
	URI string
	// PublishingInterval of the server's subscriptions. Default
	// DefaultPublishingInterval.
	PublishingInterval time.Duration
	// MaxItemsPerSubscription splits the monitored items over several
	// subscriptions. Default DefaultMaxItemsPerSubscription.
	MaxItemsPerSubscription int
	// CommandRate is how many commands per second reach the server on
	// average, CommandBurst how many at once (a token bucket). Defaults
	// DefaultCommandRate, DefaultCommandBurst.
	CommandRate  float64
	CommandBurst int
}

// withDefaults returns c with zero fields set to their defaults.
func (c ServerConfig) withDefaults() ServerConfig {
	if c.PublishingInterval == 0 {
		c.PublishingInterval = DefaultPublishingInterval
	}
	if c.MaxItemsPerSubscription == 0 {
		c.MaxItemsPerSubscription = DefaultMaxItemsPerSubscription
	}
	if c.CommandRate == 0 {
		c.CommandRate = DefaultCommandRate
	}
	if c.CommandBurst == 0 {
		c.CommandBurst = DefaultCommandBurst
	}
	return c
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ResumeTimeout, DefaultResumeTimeout)
	def(&c.CommandTimeout, DefaultCommandTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	def(&c.MinRetryDelay, DefaultMinRetryDelay)
	def(&c.MaxRetryDelay, DefaultMaxRetryDelay)
	if c.CommandQueue == 0 {
		c.CommandQueue = DefaultCommandQueue
	}
	if c.RejectQueue == 0 {
		c.RejectQueue = DefaultRejectQueue
	}
	def(&c.DedupWindow, DefaultDedupWindow)
	if c.DedupSize == 0 {
		c.DedupSize = DefaultDedupSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of c at once, each wrapping
// ErrInvalidConfig. It does not modify c.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, v any, reason string) {
		errs = append(errs, fmt.Errorf("%w: %s %v: %s", ErrInvalidConfig, key, v, reason))
	}
	if c.Table == nil {
		bad("Table", "nil", "required")
	}
	if c.Source == nil {
		bad("Source", "nil", "required")
	}
	if c.Publisher == nil {
		bad("Publisher", "nil", "required")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"ResumeTimeout", c.ResumeTimeout}, {"CommandTimeout", c.CommandTimeout},
		{"ShutdownTimeout", c.ShutdownTimeout}, {"MinRetryDelay", c.MinRetryDelay},
		{"MaxRetryDelay", c.MaxRetryDelay},
	} {
		if d.v < 0 {
			bad(d.key, d.v, "must not be negative")
		}
	}
	if c.MinRetryDelay > 0 && c.MaxRetryDelay > 0 && c.MinRetryDelay > c.MaxRetryDelay {
		bad("MinRetryDelay", c.MinRetryDelay, "above MaxRetryDelay "+c.MaxRetryDelay.String())
	}
	if c.CommandQueue < 0 {
		bad("CommandQueue", c.CommandQueue, "must not be negative")
	}
	if c.RejectQueue < 0 {
		bad("RejectQueue", c.RejectQueue, "must not be negative")
	}
	seen := make(map[string]bool, len(c.Servers))
	for i, s := range c.Servers {
		key := fmt.Sprintf("Servers[%d]", i)
		switch {
		case c.Table != nil && !c.Table.Allowed(s.URI):
			bad(key+".URI", fmt.Sprintf("%q", s.URI), "not a server of the mapping table")
		case seen[s.URI]:
			bad(key+".URI", fmt.Sprintf("%q", s.URI), "listed twice")
		}
		seen[s.URI] = true
		if s.PublishingInterval < 0 {
			bad(key+".PublishingInterval", s.PublishingInterval, "must not be negative")
		}
		if s.MaxItemsPerSubscription < 0 {
			bad(key+".MaxItemsPerSubscription", s.MaxItemsPerSubscription, "must not be negative")
		}
		if s.CommandRate < 0 || math.IsNaN(s.CommandRate) || math.IsInf(s.CommandRate, 0) {
			bad(key+".CommandRate", s.CommandRate, "must be a positive number")
		}
		if s.CommandBurst < 0 {
			bad(key+".CommandBurst", s.CommandBurst, "must not be negative")
		}
	}
	return errors.Join(errs...)
}
