package mqttbus

import (
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/buskit"
)

// ErrInvalidOptions is wrapped by every error Options.Validate reports.
var ErrInvalidOptions = errors.New("mqttbus: invalid options")

// Defaults for zero Options fields.
const (
	DefaultMaxInFlight          = 1000
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 10 * time.Second
	DefaultAckTimeout           = 10 * time.Second
	DefaultStallTimeout         = 30 * time.Second
	DefaultCommandQueue         = 256
)

// maxMessageIDs is the MQTT packet identifier space: QoS 1/2 messages in
// flight can never exceed it (MQTT 3.1.1, 2.3.1).
const maxMessageIDs = 65535

// Options configure an MQTT bus adapter (MQTT 3.1.1). The daemon fills them
// from its configuration; zero values take the defaults above.
type Options struct {
	// Brokers are URLs: tcp://, mqtt://, ssl://, tls:// or mqtts://.
	Brokers []string
	// ClientID identifies the persistent session (clean session false):
	// stable across restarts of this bridge instance and unique among
	// the broker's clients.
	ClientID string

	Username string
	Password string

	// TLS is enabled by an ssl/tls/mqtts URL, TLS, or any of the files.
	TLS         bool
	TLSCAFile   string
	TLSCertFile string
	TLSKeyFile  string

	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	// WriteTimeout bounds one packet write. Zero (the default, as in
	// paho) sets no deadline per write, which costs about 10 % of QoS 0
	// throughput; a dead connection is then found by the keep-alive
	// (KeepAlive plus half of it for the PINGRESP).
	WriteTimeout         time.Duration
	MaxReconnectInterval time.Duration // cap of the reconnect backoff

	// MaxInFlight bounds the messages published but not yet confirmed,
	// and separately the QoS 1/2 messages awaiting PUBACK/PUBCOMP even
	// inside one large batch (at most 65535, the MQTT packet id space).
	// Keep it below the broker's per-client limit for incoming QoS 1/2
	// messages (mochi-mqtt disconnects at 1024 QoS 2 messages in flight).
	// While the broker is unreachable the batches wait here and are sent
	// after the reconnect, after the QoS 1/2 messages still in flight from
	// before.
	MaxInFlight int
	// AckTimeout bounds the wait for the PUBACK of a command reply or a
	// presence message.
	AckTimeout time.Duration
	// StallTimeout makes Ready report ErrStalled when the oldest
	// unconfirmed batch is older.
	StallTimeout time.Duration
	// CommandQueue bounds the commands waiting for the CommandHandler.
	CommandQueue int
	// CommandQoS is the QoS of command subscriptions and of their results
	// (default 1).
	CommandQoS *bridge.QoS

	// Self, when set, is the bridge's own status: retained online (Since =
	// connect time) after every connect, offline by Close, and offline as
	// the connection's last will when the bridge vanishes.
	Self *bridge.Presence

	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Metrics are optional counters.
	Metrics bridge.BusMetrics
}

// LogValue implements slog.LogValuer: the options without the password.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("brokers", redactBrokers(o.Brokers)),
		slog.String("client_id", o.ClientID),
		slog.String("username", o.Username),
		slog.Bool("password", o.Password != ""),
		slog.Bool("tls", o.TLS),
		slog.Int("max_in_flight", o.MaxInFlight),
	)
}

// Validate reports every problem with o at once, each wrapping
// ErrInvalidOptions. It does not modify o.
func (o Options) Validate() error {
	p := buskit.NewProblems(ErrInvalidOptions)
	bad := p.Add
	if len(o.Brokers) == 0 {
		bad("brokers: at least one broker URL is required")
	}
	for i, s := range o.Brokers {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			bad("brokers[%d]: not a broker URL (not quoted: it may hold a password)", i)
			continue
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
		default:
			bad("brokers[%d] %q: scheme %q, want tcp, mqtt, ssl, tls or mqtts", i, u.Redacted(), u.Scheme)
		}
	}
	if o.ClientID == "" {
		bad("client_id: required (it names the persistent session)")
	}
	if o.Password != "" && o.Username == "" {
		bad("password without username")
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		bad("tls_cert_file %q and tls_key_file %q: give both or neither", o.TLSCertFile, o.TLSKeyFile)
	}
	p.NonNegative(
		buskit.NamedDuration{Name: "keep_alive", Value: o.KeepAlive},
		buskit.NamedDuration{Name: "connect_timeout", Value: o.ConnectTimeout},
		buskit.NamedDuration{Name: "write_timeout", Value: o.WriteTimeout},
		buskit.NamedDuration{Name: "max_reconnect_interval", Value: o.MaxReconnectInterval},
		buskit.NamedDuration{Name: "ack_timeout", Value: o.AckTimeout},
		buskit.NamedDuration{Name: "stall_timeout", Value: o.StallTimeout},
	)
	if o.MaxInFlight < 0 || o.MaxInFlight > maxMessageIDs {
		bad("max_in_flight %d: want 1 to %d", o.MaxInFlight, maxMessageIDs)
	}
	if o.CommandQueue < 0 {
		bad("command_queue %d: must not be negative", o.CommandQueue)
	}
	if o.CommandQoS != nil && !o.CommandQoS.Valid() {
		bad("command_qos %d: want 0, 1 or 2", *o.CommandQoS)
	}
	if o.Self != nil {
		if err := validTopic(o.Self.Route); err != nil {
			bad("self.route: %v", err)
		}
	}
	return p.Err()
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	def := buskit.Default
	def(&o.KeepAlive, DefaultKeepAlive)
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.MaxReconnectInterval, DefaultMaxReconnectInterval)
	def(&o.AckTimeout, DefaultAckTimeout)
	def(&o.StallTimeout, DefaultStallTimeout)
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.CommandQueue == 0 {
		o.CommandQueue = DefaultCommandQueue
	}
	if o.CommandQoS == nil {
		q := bridge.AtLeastOnce
		o.CommandQoS = &q
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// redactBrokers hides passwords embedded in broker URLs.
func redactBrokers(brokers []string) []string {
	out := make([]string, len(brokers))
	for i, s := range brokers {
		if u, err := url.Parse(s); err == nil {
			out[i] = u.Redacted()
		} else {
			out[i] = "(unparsable)"
		}
	}
	return out
}
