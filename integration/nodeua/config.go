package nodeua

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Defaults of Config. The server listens on 127.0.0.1 only, whatever the
// Hostname.
const (
	DefaultApplicationURI  = "urn:rcbridge:test:server"
	DefaultApplicationName = "rcbridge test server"
	DefaultNamespaceURI    = "urn:rcbridge:test"
	DefaultHostname        = "localhost"
	DefaultCounterInterval = 10 * time.Millisecond
	DefaultStartTimeout    = 60 * time.Second

	DefaultReconnectDelay    = 100 * time.Millisecond
	DefaultMaxReconnectDelay = 2 * time.Second
	DefaultConnectionTimeout = 10 * time.Second
)

// The users of DefaultUsers.
const (
	OperatorUser     = "operator"
	OperatorPassword = "operator-secret"
	ReaderUser       = "reader"
	ReaderPassword   = "reader-secret"
)

// Security policy names accepted in Config.SecurityPolicies.
const (
	PolicyNone                = "None"
	PolicyBasic256Sha256      = "Basic256Sha256"
	PolicyAes128Sha256RsaOaep = "Aes128_Sha256_RsaOaep"
	PolicyAes256Sha256RsaPss  = "Aes256_Sha256_RsaPss"
)

// Security mode names accepted in Config.SecurityModes.
const (
	ModeNone           = "None"
	ModeSign           = "Sign"
	ModeSignAndEncrypt = "SignAndEncrypt"
)

// Role decides what a user may do (OPC 10000-3 §4.9 well-known roles).
type Role string

const (
	// RoleOperator holds the roles AuthenticatedUser and Operator: it may
	// write every writable node, the OperatorOnly node included.
	RoleOperator Role = "operator"
	// RoleReader holds the roles AuthenticatedUser and Observer: writing the
	// OperatorOnly node fails with BadUserAccessDenied, and so does writing
	// any writable node when Config.AnonymousReadOnly is set.
	RoleReader Role = "reader"
)

// User is a username/password identity the server accepts.
type User struct {
	Username string
	Password string
	Role     Role
}

// X509User is an X.509 user identity (a UserIdentityToken of type
// X509IdentityToken) the server accepts. Its certificate is trusted by the
// server's user PKI; other user certificates are rejected.
type X509User struct {
	// Certificate is the user certificate, DER encoded. Its subject common
	// name is the user name the server assigns the role to.
	Certificate []byte
	Role        Role
}

// DefaultUsers returns the users a Config with a nil Users field gets:
// OperatorUser (RoleOperator) and ReaderUser (RoleReader).
func DefaultUsers() []User {
	return []User{
		{Username: OperatorUser, Password: OperatorPassword, Role: RoleOperator},
		{Username: ReaderUser, Password: ReaderPassword, Role: RoleReader},
	}
}

// ReverseConnect makes the server dial out to reverse-connect clients and
// send a ReverseHello (Part 6 §7.1.3), using node-opcua's own implementation.
//
// node-opcua keeps at most one connection per client URL. A dial that fails
// or a socket closed before the secure channel came up is retried after a
// delay that starts at ReconnectDelay and doubles up to MaxReconnectDelay; a
// completed HEL resets it, and after an established channel ends the server
// re-dials after ReconnectDelay.
type ReverseConnect struct {
	// ClientURLs are the listeners the server dials, e.g.
	// "opc.tcp://127.0.0.1:4843". Only the host and port are used.
	ClientURLs []string
	// ReconnectDelay is the first re-dial delay; 0 means
	// DefaultReconnectDelay (node-opcua's own default is 5 s).
	ReconnectDelay time.Duration
	// MaxReconnectDelay caps the doubling; 0 means DefaultMaxReconnectDelay.
	MaxReconnectDelay time.Duration
	// ConnectionTimeout is how long the server waits for the client's HEL
	// after the RHE; 0 means DefaultConnectionTimeout.
	ConnectionTimeout time.Duration
}

// OperationLimits are the server's Server.ServerCapabilities.OperationLimits
// (OPC 10000-5 §6.3.11). Zero leaves node-opcua's default.
type OperationLimits struct {
	MaxNodesPerRead                          uint32 `json:"maxNodesPerRead,omitempty"`
	MaxNodesPerWrite                         uint32 `json:"maxNodesPerWrite,omitempty"`
	MaxNodesPerBrowse                        uint32 `json:"maxNodesPerBrowse,omitempty"`
	MaxNodesPerMethodCall                    uint32 `json:"maxNodesPerMethodCall,omitempty"`
	MaxNodesPerRegisterNodes                 uint32 `json:"maxNodesPerRegisterNodes,omitempty"`
	MaxNodesPerTranslateBrowsePathsToNodeIDs uint32 `json:"maxNodesPerTranslateBrowsePathsToNodeIds,omitempty"`
	MaxMonitoredItemsPerCall                 uint32 `json:"maxMonitoredItemsPerCall,omitempty"`
}

// Capabilities are further server limits (OPC 10000-5 §6.3.2). Zero leaves
// the default: MaxSessions 200, the rest node-opcua's.
type Capabilities struct {
	MaxSessions                      uint32 `json:"maxSessions,omitempty"`
	MaxSubscriptions                 uint32 `json:"maxSubscriptions,omitempty"`
	MaxSubscriptionsPerSession       uint32 `json:"maxSubscriptionsPerSession,omitempty"`
	MaxMonitoredItems                uint32 `json:"maxMonitoredItems,omitempty"`
	MaxMonitoredItemsPerSubscription uint32 `json:"maxMonitoredItemsPerSubscription,omitempty"`
	MaxMonitoredItemsQueueSize       uint32 `json:"maxMonitoredItemsQueueSize,omitempty"`
	MaxBrowseContinuationPoints      uint32 `json:"maxBrowseContinuationPoints,omitempty"`
}

// Config configures one test server. The zero value is a usable server: no
// reverse connect, every security policy and mode, anonymous plus
// DefaultUsers, client certificates accepted automatically, a 10 ms counter.
type Config struct {
	// ApplicationURI is the server's ApplicationUri: the RHE's ServerUri and
	// the URI in its certificate. Default DefaultApplicationURI.
	ApplicationURI string
	// ApplicationName is the certificate's common name and the application
	// name. Default DefaultApplicationName.
	ApplicationName string
	// Hostname is the host in the server's EndpointUrl (RHE, GetEndpoints)
	// and a DNS name in its certificate. It is never resolved or listened on:
	// use e.g. "plc.invalid" to prove a client never dials it. Default
	// DefaultHostname.
	Hostname string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// NamespaceURI is the URI of the namespace holding the test nodes.
	// Default DefaultNamespaceURI.
	NamespaceURI string
	// CertApplicationURI is the URI put into the server certificate when it
	// is generated; empty means ApplicationURI. Set it to something else to
	// test a client's ApplicationUri check (the server still announces
	// ApplicationURI in its RHE and ApplicationDescription).
	CertApplicationURI string

	// ReverseConnect, when non-nil, makes the server dial out.
	ReverseConnect *ReverseConnect

	// SecurityPolicies are the Policy* names offered; nil means all four.
	// A username token on the None endpoint needs a secure policy in this
	// list too (the password is encrypted with it).
	SecurityPolicies []string
	// SecurityModes are the Mode* names offered; nil means all three.
	SecurityModes []string
	// RejectUnknownClientCerts makes the server reject client application
	// certificates that are not in TrustedClientCerts (or trusted later with
	// TrustClientCert). By default unknown ones are accepted.
	RejectUnknownClientCerts bool
	// TrustedClientCerts are client application certificates (DER) put into
	// the server's trusted store before it starts.
	TrustedClientCerts [][]byte

	// DisableAnonymous removes the anonymous user token policy.
	DisableAnonymous bool
	// AnonymousReadOnly makes every writable node writable only by
	// RoleOperator users. By default anonymous sessions may write them, and
	// since node-opcua grants every session the Anonymous role's
	// permissions, so may every user. The OperatorOnly node is always
	// operator-only.
	AnonymousReadOnly bool
	// Users are the username/password identities; nil means DefaultUsers(),
	// an empty non-nil slice means none.
	Users []User
	// X509Users are the accepted X.509 user identities.
	X509Users []X509User
	// AllowAnonymousTransferOnNone lets an anonymous session on a None
	// channel take over another anonymous session's subscriptions with
	// TransferSubscriptions. node-opcua refuses that by default, as Part 4
	// §5.13.7 asks (BadUserAccessDenied).
	AllowAnonymousTransferOnNone bool

	// CounterInterval is how often the Counter node increments; 0 means
	// DefaultCounterInterval, negative stops the counter.
	CounterInterval time.Duration
	// CounterStart is the Counter's first value.
	CounterStart uint32
	// MinSampleRate is the server's minimum sampling interval (node-opcua's
	// MinSupportedSampleRate and MonitoredItem.minimumSamplingInterval). The
	// default 0 means a monitored item that asks for a sampling interval of
	// 0 is served exception-based and reports every change.
	MinSampleRate time.Duration
	// GeneratedNodes adds that many Int32 variables "Gen.0".."Gen.N-1"
	// (value i) in the folder Objects/Gen.
	GeneratedNodes int
	// OperationLimits and Capabilities set the advertised server limits,
	// which node-opcua also enforces.
	OperationLimits OperationLimits
	Capabilities    Capabilities

	// MaxChannels caps the concurrent secure channels of the endpoint
	// (node-opcua's maxConnectionsPerEndpoint); 0 means 100.
	MaxChannels int

	// PKIDir is the server's PKI directory (server/ and user/ stores). Empty
	// means a fresh directory under t.TempDir(). Restart keeps it, and with
	// it the server certificate.
	PKIDir string
	// StartTimeout bounds the wait for the server's ready line. Default
	// DefaultStartTimeout.
	StartTimeout time.Duration
}

// Sentinel errors of the harness.
var (
	// ErrConfig means a Config field is invalid.
	ErrConfig = errors.New("nodeua: invalid config")
	// ErrNotRunning means the server process is not running.
	ErrNotRunning = errors.New("nodeua: server not running")
	// ErrCommand means the server answered a control command with an error.
	ErrCommand = errors.New("nodeua: command failed")
)

// serverConfig is the JSON document server.mjs reads.
type serverConfig struct {
	ApplicationURI            string          `json:"applicationUri"`
	ApplicationName           string          `json:"applicationName"`
	Port                      int             `json:"port"`
	Host                      string          `json:"host"`
	Hostname                  string          `json:"hostname"`
	PKIDir                    string          `json:"pkiDir"`
	NamespaceURI              string          `json:"namespaceUri"`
	ReverseConnect            *reverseJSON    `json:"reverseConnect,omitempty"`
	SecurityPolicies          []string        `json:"securityPolicies,omitempty"`
	SecurityModes             []string        `json:"securityModes,omitempty"`
	AutoAcceptClientCerts     bool            `json:"autoAcceptClientCerts"`
	TrustedClientCerts        []string        `json:"trustedClientCerts"`
	AllowAnonymous            bool            `json:"allowAnonymous"`
	AnonymousWrite            bool            `json:"anonymousWrite"`
	Users                     []userJSON      `json:"users"`
	X509Users                 []x509UserJSON  `json:"x509Users"`
	CounterIntervalMS         float64         `json:"counterIntervalMs"`
	CounterStart              uint32          `json:"counterStart"`
	MinSampleRateMS           float64         `json:"minSampleRateMs"`
	GeneratedNodes            int             `json:"generatedNodes"`
	OperationLimits           OperationLimits `json:"operationLimits"`
	Capabilities              Capabilities    `json:"capabilities"`
	MaxConnectionsPerEndpoint int             `json:"maxConnectionsPerEndpoint"`
	CertApplicationURI        string          `json:"certApplicationUri,omitempty"`
	AllowAnonymousTransfer    bool            `json:"allowAnonymousTransferOnNone"`
}

type reverseJSON struct {
	Clients             []string `json:"clients"`
	ReconnectDelayMS    int64    `json:"reconnectDelayMs"`
	MaxReconnectDelayMS int64    `json:"maxReconnectDelayMs"`
	ConnectionTimeoutMS int64    `json:"connectionTimeoutMs"`
}

type userJSON struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     Role   `json:"role"`
}

type x509UserJSON struct {
	CertFile   string `json:"certFile"`
	CommonName string `json:"commonName"`
	Role       Role   `json:"role"`
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// validate reports every problem of c at once.
func (c *Config) validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("%w: Port %d", ErrConfig, c.Port))
	}
	if c.GeneratedNodes < 0 {
		errs = append(errs, fmt.Errorf("%w: GeneratedNodes %d", ErrConfig, c.GeneratedNodes))
	}
	for i, p := range c.SecurityPolicies {
		switch p {
		case PolicyNone, PolicyBasic256Sha256, PolicyAes128Sha256RsaOaep, PolicyAes256Sha256RsaPss:
		default:
			errs = append(errs, fmt.Errorf("%w: SecurityPolicies[%d] %q", ErrConfig, i, p))
		}
	}
	for i, m := range c.SecurityModes {
		switch m {
		case ModeNone, ModeSign, ModeSignAndEncrypt:
		default:
			errs = append(errs, fmt.Errorf("%w: SecurityModes[%d] %q", ErrConfig, i, m))
		}
	}
	for i, u := range c.Users {
		if u.Role != RoleOperator && u.Role != RoleReader {
			errs = append(errs, fmt.Errorf("%w: Users[%d].Role %q", ErrConfig, i, u.Role))
		}
		if u.Username == "" {
			errs = append(errs, fmt.Errorf("%w: Users[%d].Username empty", ErrConfig, i))
		}
	}
	for i, u := range c.X509Users {
		if u.Role != RoleOperator && u.Role != RoleReader {
			errs = append(errs, fmt.Errorf("%w: X509Users[%d].Role %q", ErrConfig, i, u.Role))
		}
		if _, err := commonName(u.Certificate); err != nil {
			errs = append(errs, fmt.Errorf("%w: X509Users[%d].Certificate: %w", ErrConfig, i, err))
		}
	}
	if c.MaxChannels < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxChannels %d", ErrConfig, c.MaxChannels))
	}
	if rc := c.ReverseConnect; rc != nil && len(rc.ClientURLs) == 0 {
		errs = append(errs, fmt.Errorf("%w: ReverseConnect.ClientURLs empty", ErrConfig))
	}
	return errors.Join(errs...)
}

func commonName(der []byte) (string, error) {
	if b, _ := pem.Decode(der); b != nil {
		der = b.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	if cert.Subject.CommonName == "" {
		return "", errors.New("certificate has no subject common name")
	}
	return cert.Subject.CommonName, nil
}
