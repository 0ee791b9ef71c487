// Package config loads and validates the rcbridge configuration: one TOML
// file plus environment overrides, decoded into plain structs with typed
// values, and checked by a pure Validate that reports every problem at once
// with its key path.
//
// Environment overrides: every scalar or list key outside the [[servers]]
// and [[map]] arrays can be set with a variable named RCBRIDGE_ followed by
// its key path in upper case, dots and dashes becoming underscores:
// bus.nats.urls is RCBRIDGE_BUS_NATS_URLS, listener.first_message_timeout
// is RCBRIDGE_LISTENER_FIRST_MESSAGE_TIMEOUT. Lists are comma-separated.
// Secrets are never set this way: name the variable that holds one with the
// *_env key instead (bus.nats.password_env = "NATS_PASSWORD"). A variable
// that starts like an override (RCBRIDGE_ and a section name, e.g.
// RCBRIDGE_BUS_) but matches no key is an error, like an unknown key in the
// file; other RCBRIDGE_ variables are not overrides and are ignored.
package config

import (
	"errors"
	"strconv"
	"time"

	"github.com/rcbridge/rcbridge/mapping"
)

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("config: invalid configuration")

// FieldError is a problem at a key path. When the problem is a value, the
// message quotes it after the path:
//
//	map[3].node "ns=2;x=7": unknown identifier type "x"
//
// otherwise it reads "<path>: <reason>". It wraps ErrInvalid and the cause.
type FieldError struct {
	Path string
	Err  error
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	if _, ok := e.Err.(*mapping.ValueError); ok {
		return e.Path + " " + e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

// Unwrap returns ErrInvalid and the cause.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Config is the whole daemon configuration.
type Config struct {
	Listener Listener `koanf:"listener"`
	// Servers is the allow-list: a ReverseHello from a ServerUri not listed
	// here is rejected. An empty list rejects every server.
	Servers []Server `koanf:"servers"`
	Client  Client   `koanf:"client"`
	Bus     Bus      `koanf:"bus"`
	Map     []MapRow `koanf:"map"`
	HTTP    HTTP     `koanf:"http"`
	Log     Log      `koanf:"log"`
}

// Listener configures where reverse connections arrive and how they are
// admitted.
type Listener struct {
	// Address is the TCP address servers dial (host:port).
	Address string `koanf:"address"`
	// FirstMessageTimeout closes a socket that has not sent a complete
	// ReverseHello in time.
	FirstMessageTimeout Duration `koanf:"first_message_timeout"`
	// MaxPending caps sockets waiting for their ReverseHello, in total and
	// per source IP address.
	MaxPending          int `koanf:"max_pending"`
	MaxPendingPerSource int `koanf:"max_pending_per_source"`
	// HoldTime is how long an admitted socket waits for its server's session
	// to take it; HoldPerServer caps how many wait per server.
	HoldTime      Duration `koanf:"hold_time"`
	HoldPerServer int      `koanf:"hold_per_server"`
}

// Server is one allow-listed OPC UA server.
type Server struct {
	// URI is the ServerUri the server sends in its ReverseHello (exact,
	// case-sensitive).
	URI string `koanf:"uri"`
	// Key names the server in subjects and topics; empty derives it from
	// the URI (escaped).
	Key            string         `koanf:"key"`
	SecurityPolicy SecurityPolicy `koanf:"security_policy"`
	SecurityMode   SecurityMode   `koanf:"security_mode"`
	// ServerCertificate pins the server's certificate (PEM or DER file).
	ServerCertificate string `koanf:"server_certificate"`
	// TrustDir holds trusted server certificates; empty uses client.trust_dir.
	TrustDir string   `koanf:"trust_dir"`
	Identity Identity `koanf:"identity"`
	// PublishingInterval of the server's subscriptions.
	PublishingInterval Duration `koanf:"publishing_interval"`
	// MaxItemsPerSubscription splits large mappings over subscriptions.
	MaxItemsPerSubscription int `koanf:"max_items_per_subscription"`
	// NotificationQueueSize bounds the notifications waiting for the bus.
	NotificationQueueSize int `koanf:"notification_queue_size"`
	// CommandRate (per second) and CommandBurst limit commands from the
	// bus to this server.
	CommandRate  float64 `koanf:"command_rate"`
	CommandBurst int     `koanf:"command_burst"`
}

// Identity is the user identity the bridge activates its session with.
type Identity struct {
	Kind     IdentityKind `koanf:"kind"`
	Username string       `koanf:"username"`
	// Password is only here to be refused: use PasswordFile or PasswordEnv.
	Password     Secret `koanf:"password"`
	PasswordFile string `koanf:"password_file"`
	PasswordEnv  string `koanf:"password_env"`
	// Certificate and PrivateKey are the user certificate (kind certificate).
	Certificate string `koanf:"certificate"`
	PrivateKey  string `koanf:"private_key"`
}

// PasswordRef says where the password comes from.
func (i Identity) PasswordRef() SecretRef { return SecretRef{File: i.PasswordFile, Env: i.PasswordEnv} }

// Client is the bridge's own OPC UA application identity.
type Client struct {
	// Certificate and PrivateKey are PEM or DER files; when both are empty
	// and GenerateCertificate is set, the daemon creates them on first start
	// under CertificateDir.
	Certificate         string `koanf:"certificate"`
	PrivateKey          string `koanf:"private_key"`
	GenerateCertificate bool   `koanf:"generate_certificate"`
	CertificateDir      string `koanf:"certificate_dir"`
	ApplicationURI      string `koanf:"application_uri"`
	ApplicationName     string `koanf:"application_name"`
	// TrustDir holds trusted server certificates for every server.
	TrustDir       string   `koanf:"trust_dir"`
	RequestTimeout Duration `koanf:"request_timeout"`
	SessionTimeout Duration `koanf:"session_timeout"`
	// BufferSize is the transport buffer size (bytes) the bridge announces
	// in its Hello to every server, as ReceiveBufferSize and
	// SendBufferSize: the largest message chunk either side sends (Part 6,
	// 7.1.2.3). It is also allocated for every chunk received, so it sets
	// most of a session's memory; a message needs at most the server's
	// MaxChunkCount chunks (512 when the server sets none). 8192 to 4 MiB.
	BufferSize int `koanf:"buffer_size"`
}

// Bus selects and configures the message bus.
type Bus struct {
	Kind BusKind `koanf:"kind"`
	// Prefix starts every subject or topic (several tokens/levels allowed).
	Prefix string `koanf:"prefix"`
	// AnswerUnknownCommands subscribes the catch-all command filters
	// ("<prefix>.*.*.set" and the like) so that a command on a route no
	// row declares gets a reply saying so. Turn it off when bridges with
	// different mappings share one prefix.
	AnswerUnknownCommands bool     `koanf:"answer_unknown_commands"`
	NATS                  NATS     `koanf:"nats"`
	MQTT                  MQTT     `koanf:"mqtt"`
	Embedded              Embedded `koanf:"embedded"`
}

// TLS configures a TLS client connection. Certificate verification is
// always on.
type TLS struct {
	Enabled     bool   `koanf:"enabled"`
	CA          string `koanf:"ca"`
	Certificate string `koanf:"certificate"`
	PrivateKey  string `koanf:"private_key"`
	ServerName  string `koanf:"server_name"`
}

// NATS configures the NATS client (kind "nats").
type NATS struct {
	URLs []string `koanf:"urls"`
	Name string   `koanf:"name"`
	TLS  TLS      `koanf:"tls"`
	User string   `koanf:"user"`
	// Password and Token are only here to be refused inline.
	Password     Secret    `koanf:"password"`
	PasswordFile string    `koanf:"password_file"`
	PasswordEnv  string    `koanf:"password_env"`
	Token        Secret    `koanf:"token"`
	TokenFile    string    `koanf:"token_file"`
	TokenEnv     string    `koanf:"token_env"`
	NKeySeedFile string    `koanf:"nkey_seed_file"`
	CredsFile    string    `koanf:"creds_file"`
	JetStream    JetStream `koanf:"jetstream"`
	// ReconnectBufferSize bounds what the tail and request tools buffer
	// while reconnecting (bytes). The bridge's own connection buffers
	// nothing there: natsbus re-sends what was not confirmed.
	ReconnectBufferSize int      `koanf:"reconnect_buffer_size"`
	ConnectTimeout      Duration `koanf:"connect_timeout"`
	PublishTimeout      Duration `koanf:"publish_timeout"`
}

// PasswordRef says where the NATS password comes from.
func (n NATS) PasswordRef() SecretRef { return SecretRef{File: n.PasswordFile, Env: n.PasswordEnv} }

// TokenRef says where the NATS token comes from.
func (n NATS) TokenRef() SecretRef { return SecretRef{File: n.TokenFile, Env: n.TokenEnv} }

// JetStream configures persistence on NATS (kinds "nats" and "embedded").
type JetStream struct {
	Enabled bool `koanf:"enabled"`
	// Stream is created if absent, capturing the data, status and events
	// subjects (never the command subjects: the stream would answer them).
	Stream string `koanf:"stream"`
	// Subjects replaces the subjects the daemon derives for a created
	// stream. None may capture a command subject, a subject the bridge
	// answers writes to read-only rows on, or its catch-all command
	// filters ("<prefix>.*.*.set"): the stream would answer the request
	// with its PubAck before the bridge could.
	Subjects []string `koanf:"subjects"`
	// StatusBucket is the KV bucket for presence.
	StatusBucket string `koanf:"status_bucket"`
	// StatusTTL is how long a presence entry stays in the bucket unless
	// the bridge writes it again (it does every third of that while it
	// runs), so that a crashed bridge's servers do not stay "online"; 0
	// keeps entries for ever.
	StatusTTL Duration `koanf:"status_ttl"`
	// DuplicateWindow de-duplicates republished messages by message id.
	DuplicateWindow Duration `koanf:"duplicate_window"`
	MaxAge          Duration `koanf:"max_age"`
}

// MQTT configures the MQTT client (kind "mqtt").
type MQTT struct {
	Brokers      []string `koanf:"brokers"`
	ClientID     string   `koanf:"client_id"`
	Username     string   `koanf:"username"`
	Password     Secret   `koanf:"password"`
	PasswordFile string   `koanf:"password_file"`
	PasswordEnv  string   `koanf:"password_env"`
	TLS          TLS      `koanf:"tls"`
	// QoS and Retain are the defaults for rows that set none.
	QoS    mapping.QoS `koanf:"qos"`
	Retain bool        `koanf:"retain"`
	// PersistentSession keeps QoS 1/2 state across reconnects (clean
	// session false).
	PersistentSession bool     `koanf:"persistent_session"`
	KeepAlive         Duration `koanf:"keep_alive"`
	ConnectTimeout    Duration `koanf:"connect_timeout"`
}

// PasswordRef says where the MQTT password comes from.
func (m MQTT) PasswordRef() SecretRef { return SecretRef{File: m.PasswordFile, Env: m.PasswordEnv} }

// Embedded configures the in-process NATS server (kind "embedded").
type Embedded struct {
	Address   string    `koanf:"address"`
	DataDir   string    `koanf:"data_dir"`
	JetStream JetStream `koanf:"jetstream"`
}

// MapRow is one [[map]] row; see mapping.Row for the meaning of each key.
type MapRow struct {
	Servers    ServerList      `koanf:"servers"`
	Node       mapping.NodeRef `koanf:"node"`
	BrowsePath mapping.NodeRef `koanf:"browse_path"`
	Object     mapping.NodeRef `koanf:"object"`
	Method     mapping.NodeRef `koanf:"method"`
	// Arguments are a method's input argument types ("Double", "Int32[]").
	Arguments        []mapping.ValueType  `koanf:"arguments"`
	Name             string               `koanf:"name"`
	SamplingInterval *Duration            `koanf:"sampling_interval"`
	QueueSize        uint32               `koanf:"queue_size"`
	DeadbandType     mapping.DeadbandKind `koanf:"deadband_type"`
	Deadband         float64              `koanf:"deadband"`
	// Subject/CommandSubject (NATS, embedded) or Topic/CommandTopic (MQTT)
	// are route templates.
	Subject        string                `koanf:"subject"`
	Topic          string                `koanf:"topic"`
	CommandSubject string                `koanf:"command_subject"`
	CommandTopic   string                `koanf:"command_topic"`
	Payload        mapping.PayloadFormat `koanf:"payload"`
	Writable       bool                  `koanf:"writable"`
	Publish        bool                  `koanf:"publish"`
	// QoS and Retain override the bus defaults (MQTT only).
	QoS    *mapping.QoS `koanf:"qos"`
	Retain *bool        `koanf:"retain"`
}

// HTTP configures the metrics and health endpoint.
type HTTP struct {
	// Address is host:port; empty disables the endpoint.
	Address string `koanf:"address"`
	// PProf serves the Go runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the same address. Off by default: profiles show
	// the process's internals to anyone who can reach the address.
	PProf bool `koanf:"pprof"`
}

// Log configures logging.
type Log struct {
	Level  LogLevel  `koanf:"level"`
	Format LogFormat `koanf:"format"`
}

// Default returns the configuration with every default filled in. It is the
// one place defaults live; rows and servers get theirs from DefaultServer
// and DefaultMapRow.
func Default() Config {
	return Config{
		Listener: Listener{
			Address:             "0.0.0.0:4844",
			FirstMessageTimeout: Duration(5 * time.Second),
			MaxPending:          64,
			MaxPendingPerSource: 8,
			HoldTime:            Duration(30 * time.Second),
			HoldPerServer:       2,
		},
		Client: Client{
			GenerateCertificate: true,
			CertificateDir:      "pki",
			ApplicationURI:      "urn:rcbridge:client",
			ApplicationName:     "rcbridge",
			RequestTimeout:      Duration(10 * time.Second),
			SessionTimeout:      Duration(10 * time.Minute),
			BufferSize:          32 << 10,
		},
		Bus: Bus{
			Kind:                  BusEmbedded,
			Prefix:                "rcbridge",
			AnswerUnknownCommands: true,
			NATS: NATS{
				URLs:                []string{"nats://127.0.0.1:4222"},
				Name:                "rcbridge",
				ReconnectBufferSize: 8 << 20,
				ConnectTimeout:      Duration(5 * time.Second),
				PublishTimeout:      Duration(5 * time.Second),
				JetStream:           defaultJetStream(false),
			},
			MQTT: MQTT{
				Brokers:           []string{"tcp://127.0.0.1:1883"},
				ClientID:          "rcbridge",
				QoS:               mapping.AtLeastOnce,
				PersistentSession: true,
				KeepAlive:         Duration(30 * time.Second),
				ConnectTimeout:    Duration(10 * time.Second),
			},
			Embedded: Embedded{
				Address:   "127.0.0.1:4222",
				DataDir:   "data/nats",
				JetStream: defaultJetStream(true),
			},
		},
		HTTP: HTTP{Address: "127.0.0.1:9844"},
		Log:  Log{Level: LogLevel(0), Format: LogText},
	}
}

func defaultJetStream(enabled bool) JetStream {
	return JetStream{
		Enabled:         enabled,
		Stream:          "RCBRIDGE",
		StatusBucket:    "rcbridge_status",
		StatusTTL:       Duration(30 * time.Second),
		DuplicateWindow: Duration(2 * time.Minute),
		MaxAge:          Duration(24 * time.Hour),
	}
}

// DefaultServer returns a [[servers]] entry with its defaults: security on
// (Basic256Sha256, SignAndEncrypt), anonymous identity.
func DefaultServer() Server {
	return Server{
		SecurityPolicy:          PolicyBasic256Sha256,
		SecurityMode:            ModeSignAndEncrypt,
		Identity:                Identity{Kind: IdentityAnonymous},
		PublishingInterval:      Duration(500 * time.Millisecond),
		MaxItemsPerSubscription: 1000,
		NotificationQueueSize:   256,
		CommandRate:             10,
		CommandBurst:            20,
	}
}

// DefaultMapRow returns a [[map]] row with its defaults.
func DefaultMapRow() MapRow {
	return MapRow{
		QueueSize: 10,
		Publish:   true,
		Payload:   mapping.PayloadJSON,
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
