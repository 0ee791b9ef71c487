package natsbus

import (
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/buskit"
)

// ErrInvalidOptions is wrapped by every error Options.Validate reports.
var ErrInvalidOptions = errors.New("natsbus: invalid options")

// Defaults for zero Options fields.
const (
	DefaultMaxInFlight    = 65536
	DefaultFlushTimeout   = 5 * time.Second
	DefaultAckTimeout     = 10 * time.Second
	DefaultStallTimeout   = 30 * time.Second
	DefaultCommandQueue   = 256
	DefaultReconnectWait  = 250 * time.Millisecond
	DefaultPingInterval   = 10 * time.Second
	DefaultDuplicates     = 2 * time.Minute
	DefaultPresenceBucket = "rcbridge_presence"
	DefaultPresenceTTL    = 30 * time.Second
)

// Options configure a NATS bus adapter. The daemon fills them from its
// configuration; zero values take the defaults above.
type Options struct {
	// URLs of the NATS servers (nats:// or tls://); at least one.
	URLs []string
	// Name is the connection name shown by the server's monitoring.
	Name string

	// At most one of User (with Password), Token, NKeySeedFile and
	// CredsFile authenticates the connection.
	User         string
	Password     string
	Token        string
	NKeySeedFile string
	CredsFile    string

	// TLS is enabled by a tls:// URL, TLS, or any of the files. TLSCAFile
	// adds trusted roots; TLSCertFile and TLSKeyFile give a client
	// certificate.
	TLS         bool
	TLSCAFile   string
	TLSCertFile string
	TLSKeyFile  string

	// ReconnectWait is the pause between reconnect attempts (nats.go adds
	// jitter). Reconnection never gives up until Close.
	ReconnectWait time.Duration
	// PingInterval is how often the client pings the server; two missing
	// answers mark the connection dead.
	PingInterval time.Duration

	// MaxInFlight bounds the messages published but not yet confirmed.
	// It is the adapter's reconnect buffer: while the connection is down,
	// unconfirmed messages stay here (nats.go's own reconnect buffer is
	// off, so nothing can overtake a message that is re-sent), and Publish
	// blocks when it is full.
	MaxInFlight int
	// FlushTimeout bounds one core-NATS confirmation round trip; when it
	// expires the unconfirmed batches are sent again.
	FlushTimeout time.Duration
	// AckTimeout bounds the wait for one JetStream PubAck; when it expires
	// the message is sent again (de-duplicated by its Nats-Msg-Id).
	AckTimeout time.Duration
	// StallTimeout makes Ready report ErrStalled when the oldest
	// unconfirmed batch is older.
	StallTimeout time.Duration
	// CommandQueue bounds the commands waiting for the CommandHandler.
	CommandQueue int

	// JetStream, when set, publishes into a stream with acknowledgements
	// instead of core NATS.
	JetStream *JetStreamOptions

	// Self, when set, is the bridge's own status: published online (Since
	// = connect time) after every connect and offline by Close. NATS has
	// no last will: after a crash the last "online" stays until the next
	// start.
	Self *bridge.Presence

	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Metrics are optional counters.
	Metrics bridge.BusMetrics
}

// JetStreamOptions configure the JetStream mode.
type JetStreamOptions struct {
	// Stream is the stream the data subjects are stored in; it is created
	// with the settings below when absent and used unchanged when present
	// (its duplicate window must be > 0).
	Stream string
	// Subjects the stream captures when it has to be created, e.g.
	// "rcbridge.>".
	Subjects []string
	// Duplicates is the de-duplication window of a created stream: a
	// message re-sent within it with the same Nats-Msg-Id is stored once.
	Duplicates time.Duration
	// Memory stores a created stream in memory instead of files.
	Memory bool
	// Replicas of a created stream (default 1).
	Replicas int
	// MaxAge and MaxBytes limit a created stream (0: unlimited).
	MaxAge   time.Duration
	MaxBytes int64
	// PresenceBucket is the KV bucket presence is written to (created with
	// history 1 when absent).
	PresenceBucket string
	// PresenceTTL is how long a presence entry lives in the bucket unless
	// written again. NATS has no last will: without it a crashed bridge's
	// entries would say "online" for ever. The adapter writes every entry
	// again every PresenceTTL/3 while it runs, so after a crash they are
	// gone within PresenceTTL, each leaving a delete marker that KV
	// watchers see (kept for PresenceTTL). Default DefaultPresenceTTL;
	// negative keeps entries for ever. A bucket created with another TTL
	// is updated to this one.
	PresenceTTL time.Duration
}

// LogValue implements slog.LogValuer: the options without their secrets.
func (o Options) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Any("urls", redactURLs(o.URLs)),
		slog.String("name", o.Name),
		slog.String("user", o.User),
		slog.Bool("password", o.Password != ""),
		slog.Bool("token", o.Token != ""),
		slog.String("nkey_seed_file", o.NKeySeedFile),
		slog.String("creds_file", o.CredsFile),
		slog.Bool("tls", o.TLS),
		slog.Int("max_in_flight", o.MaxInFlight),
	}
	if o.JetStream != nil {
		attrs = append(attrs, slog.String("stream", o.JetStream.Stream),
			slog.String("presence_bucket", o.JetStream.PresenceBucket))
	}
	return slog.GroupValue(attrs...)
}

// redactURLs hides passwords embedded in URLs.
func redactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			out[i] = "(unparsable)"
			continue
		}
		out[i] = u.Redacted()
	}
	return out
}

// Validate reports every problem with o at once, each wrapping
// ErrInvalidOptions. It does not modify o.
func (o Options) Validate() error {
	p := buskit.NewProblems(ErrInvalidOptions)
	bad := p.Add
	if len(o.URLs) == 0 {
		bad("urls: at least one server URL is required")
	}
	for i, s := range o.URLs {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			bad("urls[%d]: not a server URL (not quoted: it may hold a password)", i)
			continue
		}
		switch u.Scheme {
		case "nats", "tls":
		default:
			bad("urls[%d] %q: scheme %q, want nats or tls", i, u.Redacted(), u.Scheme)
		}
	}
	auth := 0
	for _, set := range []bool{o.User != "", o.Token != "", o.NKeySeedFile != "", o.CredsFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		bad("authentication: give only one of user, token, nkey_seed_file, creds_file")
	}
	if o.Password != "" && o.User == "" {
		bad("password without user")
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		bad("tls_cert_file %q and tls_key_file %q: give both or neither", o.TLSCertFile, o.TLSKeyFile)
	}
	p.NonNegative(
		buskit.NamedDuration{Name: "reconnect_wait", Value: o.ReconnectWait},
		buskit.NamedDuration{Name: "ping_interval", Value: o.PingInterval},
		buskit.NamedDuration{Name: "flush_timeout", Value: o.FlushTimeout},
		buskit.NamedDuration{Name: "ack_timeout", Value: o.AckTimeout},
		buskit.NamedDuration{Name: "stall_timeout", Value: o.StallTimeout},
	)
	if o.MaxInFlight < 0 {
		bad("max_in_flight %d: must not be negative", o.MaxInFlight)
	}
	if o.CommandQueue < 0 {
		bad("command_queue %d: must not be negative", o.CommandQueue)
	}
	if o.Self != nil {
		if err := validSubject(o.Self.Route); err != nil {
			bad("self.route: %v", err)
		}
		if o.JetStream != nil && !validKVKey(o.Self.Key) {
			bad("self.key %q: not a KV key ([-/_=.a-zA-Z0-9]+)", o.Self.Key)
		}
	}
	if js := o.JetStream; js != nil {
		if !validName(js.Stream) {
			bad("jetstream.stream %q: want a name of letters, digits, - and _", js.Stream)
		}
		if len(js.Subjects) == 0 {
			bad("jetstream.subjects: at least one subject is required")
		}
		for i, s := range js.Subjects {
			if err := validFilter(s); err != nil {
				bad("jetstream.subjects[%d]: %v", i, err)
			}
		}
		if js.Duplicates < 0 || js.MaxAge < 0 || js.MaxBytes < 0 || js.Replicas < 0 {
			bad("jetstream: duplicates, max_age, max_bytes and replicas must not be negative")
		}
		if js.PresenceBucket != "" && !validName(js.PresenceBucket) {
			bad("jetstream.presence_bucket %q: want a name of letters, digits, - and _", js.PresenceBucket)
		}
	}
	return p.Err()
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	def := buskit.Default
	def(&o.ReconnectWait, DefaultReconnectWait)
	def(&o.PingInterval, DefaultPingInterval)
	def(&o.FlushTimeout, DefaultFlushTimeout)
	def(&o.AckTimeout, DefaultAckTimeout)
	def(&o.StallTimeout, DefaultStallTimeout)
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.CommandQueue == 0 {
		o.CommandQueue = DefaultCommandQueue
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.JetStream != nil {
		js := *o.JetStream
		def(&js.Duplicates, DefaultDuplicates)
		if js.Replicas == 0 {
			js.Replicas = 1
		}
		if js.PresenceBucket == "" {
			js.PresenceBucket = DefaultPresenceBucket
		}
		def(&js.PresenceTTL, DefaultPresenceTTL)
		o.JetStream = &js
	}
	return o
}
