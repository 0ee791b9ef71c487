package rc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Factory errors.
var (
	// ErrRedialNeeded means the socket was used to discover the server's
	// endpoints and certificate (over a None channel) and has been closed;
	// the secure session needs the server's next reverse connection.
	// Specification: Part 6, 7.1.3 (a client may close a reverse connection
	// after GetEndpoints and wait for the next).
	ErrRedialNeeded = errors.New("rc: endpoints discovered, secure session needs the server's next dial")
	// ErrNoMatchingEndpoint means the server offers no endpoint with the
	// configured security policy and mode.
	ErrNoMatchingEndpoint = errors.New("rc: server offers no endpoint with the configured security")
	// ErrNotTCP means the Session's Conn is not a *net.TCPConn.
	ErrNotTCP = errors.New("rc: session connection is not a *net.TCPConn")
)

// Defaults of ClientConfig.
const (
	DefaultApplicationURI  = "urn:rcbridge:client"
	DefaultApplicationName = "rcbridge"
	DefaultProductURI      = "urn:rcbridge"
	DefaultSessionName     = "rcbridge"
	DefaultSetupTimeout    = 30 * time.Second
	DefaultRequestTimeout  = 10 * time.Second
	DefaultSessionTimeout  = 10 * time.Minute
	DefaultChannelLifetime = time.Hour
	minChannelLifetime     = 10 * time.Second
)

// ClientConfig configures a Factory. The zero value plus a Logger is a
// working None/anonymous configuration.
type ClientConfig struct {
	// SecurityPolicy and SecurityMode select the secure channel's security.
	// SecurityPolicyNone goes with SecurityModeNone only; the other
	// policies need Sign or SignAndEncrypt, a KeyPair and Trust.
	SecurityPolicy SecurityPolicy
	SecurityMode   SecurityMode
	// KeyPair is the client's application instance certificate and key;
	// required when security is on.
	KeyPair KeyPair
	// ApplicationURI is sent in CreateSession. Default: the URI in the
	// KeyPair certificate, else DefaultApplicationURI. When both are set
	// they must be equal: servers check it.
	ApplicationURI string
	// ApplicationName, ProductURI and SessionName default to the Default*
	// constants.
	ApplicationName string
	ProductURI      string
	SessionName     string
	// Locales are the preferred locale ids, sent in ActivateSession.
	Locales []string
	// Trust decides which server certificates are trusted.
	Trust TrustConfig
	// Identity is the user identity; the zero value is anonymous.
	Identity Identity
	// AllowPlaintextPassword allows sending a user name password unencrypted
	// when the server's user token policy asks for no encryption and the
	// channel is not SignAndEncrypt. Off by default: the password would cross
	// the network in clear.
	AllowPlaintextPassword bool
	// SetupTimeout bounds Build when the caller's context has no earlier
	// deadline. Default DefaultSetupTimeout.
	SetupTimeout time.Duration
	// RequestTimeout bounds a service call whose context has no deadline.
	// Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// SessionTimeout is the session timeout requested in CreateSession.
	// The server may revise it. Default DefaultSessionTimeout.
	SessionTimeout time.Duration
	// ChannelLifetime is the requested security token lifetime; gopcua
	// renews the token after 75% of it. Default DefaultChannelLifetime,
	// minimum 10s.
	ChannelLifetime time.Duration
	// PublishRequests is how many Publish requests the publish engine keeps
	// outstanding, so that notifications are not limited to one round trip
	// each. Default DefaultPublishRequests.
	PublishRequests int
	// NotificationQueue is how many NotificationMessages may wait for the
	// consumer of Client.Notifications before the engine stops asking for
	// more (the server keeps them meanwhile). Default
	// DefaultNotificationQueue.
	NotificationQueue int
	// BufferSize is the transport buffer size the client announces in its
	// Hello, as both ReceiveBufferSize and SendBufferSize, so the largest
	// message chunk either side sends; larger messages travel in several
	// chunks (Part 6, 7.1.2.3). gopcua allocates a buffer of the size the
	// server acknowledges (at most this) for every chunk it receives, so a
	// large value costs allocation and garbage collection on every
	// message, also a small one. A small value means more chunks per large
	// message, and gopcua accepts at most the server's MaxChunkCount (512
	// when the server sets none) per message: 512 chunks of 32 KiB carry
	// almost 16 MiB. The client announces that product (at most 16 MiB,
	// and at most the server's MaxMessageSize, 2 MiB to gopcua when the
	// server sets none) as its Hello's MaxMessageSize and CreateSession's
	// MaxResponseMessageSize, so a larger response fails its request with
	// Bad_ResponseTooLarge. Default DefaultBufferSize (32 KiB); 8192 to 4
	// MiB.
	BufferSize int
	// OnClientEvent receives the events of every client the Factory builds:
	// state changes (active, disconnected or stalled, resuming, resumed,
	// resume failed, closed) and the publish engine's subscription events
	// (gap, transferred, recreated). ClientEvent.Client says which client.
	//
	// Contract: the events of one client arrive in the order they happened,
	// one call at a time, from a goroutine of that client; ClientEvent.State
	// is the state after each. Events are queued, so the callback never
	// holds up the session, but it should return promptly: beyond 256
	// queued events the oldest are dropped and counted in the next event's
	// Missed. The callback may call the client's methods except Close and
	// Resume (they may wait for it). Close delivers ClientClosed last and
	// waits, within its context, until the callback has returned.
	OnClientEvent func(ClientEvent)
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

func (c ClientConfig) secure() bool { return c.SecurityPolicy != SecurityPolicyNone }

// LogValue implements slog.LogValuer: a summary without key material.
func (c ClientConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("policy", c.SecurityPolicy.String()),
		slog.String("mode", c.SecurityMode.String()),
		slog.Any("identity", c.Identity),
		slog.Any("certificate", c.KeyPair),
		slog.String("application_uri", c.ApplicationURI),
		slog.Int("pinned", len(c.Trust.Pinned)),
		slog.String("trust_dir", c.Trust.Dir),
	)
}

// Validate reports every problem in c at once.
func (c ClientConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if !c.SecurityPolicy.valid() {
		add("SecurityPolicy %d unknown", uint8(c.SecurityPolicy))
	}
	if !c.SecurityMode.valid() {
		add("SecurityMode %d unknown", uint8(c.SecurityMode))
	}
	switch {
	case c.SecurityPolicy == SecurityPolicyNone && c.SecurityMode != SecurityModeNone:
		add("SecurityPolicy None requires SecurityMode None, have %s", c.SecurityMode)
	case c.secure() && c.SecurityMode == SecurityModeNone:
		add("SecurityPolicy %s requires SecurityMode Sign or SignAndEncrypt", c.SecurityPolicy)
	}
	if c.secure() {
		if len(c.KeyPair.Certificate) == 0 || c.KeyPair.PrivateKey == nil {
			add("KeyPair: certificate and private key are required with SecurityPolicy %s", c.SecurityPolicy)
		}
		if len(c.Trust.Pinned) == 0 && c.Trust.Dir == "" {
			add("Trust: no pinned certificates and no trusted directory: no server could be trusted")
		}
	}
	if len(c.KeyPair.Certificate) > 0 || c.KeyPair.PrivateKey != nil {
		if c.KeyPair.PrivateKey == nil || len(c.KeyPair.Certificate) == 0 {
			add("KeyPair: certificate and private key go together")
		} else if err := checkKeyPair(c.KeyPair.Certificate, c.KeyPair.PrivateKey); err != nil {
			add("KeyPair: %v", err)
		} else if bits := c.KeyPair.PrivateKey.N.BitLen(); bits < 2048 || bits > 4096 {
			add("KeyPair: RSA key of %d bits, the policies need 2048..4096", bits)
		} else if cert, _ := x509.ParseCertificate(c.KeyPair.Certificate); c.ApplicationURI != "" && certificateURI(cert) != c.ApplicationURI {
			add("ApplicationURI %q differs from the certificate's ApplicationUri %q", c.ApplicationURI, certificateURI(cert))
		}
	}
	if err := c.Trust.validate(); err != nil {
		add("%v", err)
	}
	if err := c.Identity.validate(); err != nil {
		add("Identity: %v", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SetupTimeout", c.SetupTimeout}, {"RequestTimeout", c.RequestTimeout}, {"SessionTimeout", c.SessionTimeout}, {"ChannelLifetime", c.ChannelLifetime}} {
		if d.v < 0 {
			add("%s %s is negative", d.name, d.v)
		}
	}
	if c.PublishRequests < 0 || c.NotificationQueue < 0 {
		add("PublishRequests %d and NotificationQueue %d must not be negative", c.PublishRequests, c.NotificationQueue)
	}
	if c.BufferSize != 0 && (c.BufferSize < minBufferSize || c.BufferSize > maxBufferSize) {
		add("BufferSize %d outside %d..%d", c.BufferSize, minBufferSize, maxBufferSize)
	}
	if c.ChannelLifetime > 0 && c.ChannelLifetime < minChannelLifetime {
		add("ChannelLifetime %s is below %s", c.ChannelLifetime, minChannelLifetime)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with defaults filled in. c must be valid.
func (c ClientConfig) withDefaults() ClientConfig {
	if c.ApplicationURI == "" && len(c.KeyPair.Certificate) > 0 {
		if cert, err := x509.ParseCertificate(c.KeyPair.Certificate); err == nil {
			c.ApplicationURI = certificateURI(cert)
		}
	}
	setDefault := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	setDefault(&c.ApplicationURI, DefaultApplicationURI)
	setDefault(&c.ApplicationName, DefaultApplicationName)
	setDefault(&c.ProductURI, DefaultProductURI)
	setDefault(&c.SessionName, DefaultSessionName)
	setDuration := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDuration(&c.SetupTimeout, DefaultSetupTimeout)
	setDuration(&c.RequestTimeout, DefaultRequestTimeout)
	setDuration(&c.SessionTimeout, DefaultSessionTimeout)
	setDuration(&c.ChannelLifetime, DefaultChannelLifetime)
	if c.PublishRequests == 0 {
		c.PublishRequests = DefaultPublishRequests
	}
	if c.NotificationQueue == 0 {
		c.NotificationQueue = DefaultNotificationQueue
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Locales = slices.Clone(c.Locales)
	return c
}

// Factory builds OPC UA clients on admitted reverse connections. It is the
// reverse-connect counterpart of dialing: it never resolves or dials the
// EndpointUrl, it runs HEL/ACK, OpenSecureChannel, CreateSession and
// ActivateSession on the socket the server opened.
//
// A Factory is safe for concurrent use; it caches the endpoints discovered
// per ServerUri (see Build).
type Factory struct {
	cfg ClientConfig
	log *slog.Logger

	mu         sync.Mutex
	discovered map[string][]*ua.EndpointDescription // by ServerUri
	// suspect marks servers whose pinned certificate failed at
	// OpenSecureChannel: their next Build runs discovery to learn which
	// certificate they really present.
	suspect map[string]bool
}

// NewFactory validates cfg and returns a Factory.
func NewFactory(cfg ClientConfig) (*Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Factory{
		cfg:        cfg,
		log:        cfg.Logger,
		discovered: make(map[string][]*ua.EndpointDescription),
		suspect:    make(map[string]bool),
	}, nil
}

// Endpoints returns the endpoints discovered for serverURI, if any.
func (f *Factory) Endpoints(serverURI string) ([]*ua.EndpointDescription, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	eps, ok := f.discovered[serverURI]
	return slices.Clone(eps), ok
}

// Forget drops the endpoints discovered for serverURI, so that the next
// secure Build for it starts with discovery again.
func (f *Factory) Forget(serverURI string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.discovered, serverURI)
}

func (f *Factory) remember(serverURI string, eps []*ua.EndpointDescription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discovered[serverURI] = eps
	delete(f.suspect, serverURI)
}

func (f *Factory) setSuspect(serverURI string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suspect[serverURI] = true
}

func (f *Factory) isSuspect(serverURI string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suspect[serverURI]
}

// plan is what Build decided before touching the socket.
type plan struct {
	discover   bool
	remoteCert []byte                    // secure only
	endpoints  []*ua.EndpointDescription // discovered, may be nil
	fromCache  bool                      // remoteCert came from discovery
	pinned     bool                      // remoteCert is the pinned one
}

func (f *Factory) plan(serverURI string, now time.Time) (plan, error) {
	eps, cached := f.Endpoints(serverURI)
	if !f.cfg.secure() {
		return plan{endpoints: eps}, nil
	}
	if pin := f.cfg.Trust.pinned(serverURI); pin != nil {
		leaf, err := f.cfg.Trust.check(serverURI, pin, now)
		if err != nil {
			return plan{}, err
		}
		if f.isSuspect(serverURI) {
			return plan{discover: true}, nil
		}
		return plan{remoteCert: leaf, endpoints: eps, pinned: true}, nil
	}
	if !cached {
		return plan{discover: true}, nil
	}
	ep := selectEndpoint(eps, f.cfg.SecurityPolicy, f.cfg.SecurityMode)
	if ep == nil {
		f.Forget(serverURI)
		return plan{}, noMatchingEndpoint(serverURI, eps, f.cfg)
	}
	leaf, err := f.cfg.Trust.check(serverURI, ep.ServerCertificate, now)
	if err != nil {
		// Maybe the server has a new certificate: rediscover next time.
		f.Forget(serverURI)
		return plan{}, err
	}
	return plan{remoteCert: leaf, endpoints: eps, fromCache: true}, nil
}

// Build runs an OPC UA client session on the admitted reverse connection s
// and returns the active client. Build takes ownership of s.Conn: on error
// the socket is closed; on success the Client owns it.
//
// The sequence (Part 6, 7.1.3): HEL carrying s.EndpointURL byte for byte,
// OpenSecureChannel, CreateSession with s.EndpointURL and s.ServerURI,
// ActivateSession, then a Read of the NamespaceArray and the server's
// OperationLimits.
//
// With security on, the server certificate must be known before the
// channel opens. If none is pinned for s.ServerURI and none was discovered
// yet, Build runs discovery-first: GetEndpoints over a None channel on this
// socket, caches the endpoints, closes the socket and returns an error
// wrapping ErrRedialNeeded; the next Build for the same server uses the
// cache. A discovered certificate is subject to the trust rules like any
// other: if it is not trusted, Build returns a *CertificateError and caches
// nothing.
//
// ctx bounds the whole setup together with ClientConfig.SetupTimeout.
func (f *Factory) Build(ctx context.Context, s *Session) (*Client, error) {
	if s == nil || s.Conn == nil {
		return nil, fmt.Errorf("rc: Build: nil session or connection")
	}
	tcp, ok := s.Conn.(*net.TCPConn)
	if !ok {
		_ = s.Conn.Close()
		return nil, fmt.Errorf("%w: %T", ErrNotTCP, s.Conn)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.SetupTimeout)
	defer cancel()
	log := f.log.With("server_uri", s.ServerURI, "remote", tcp.RemoteAddr().String())
	wrap := func(err error) error { return fmt.Errorf("rc: server %q: %w", s.ServerURI, err) }

	p, err := f.plan(s.ServerURI, time.Now())
	if err != nil {
		_ = tcp.Close()
		return nil, wrap(err)
	}
	if p.discover {
		return nil, wrap(f.discover(ctx, s, tcp, log))
	}
	c := &Client{
		f:         f,
		cfg:       &f.cfg,
		log:       log,
		serverURI: s.ServerURI,
		endpoint:  s.EndpointURL,
	}
	begin := time.Now()
	ch, err := openChannel(ctx, tcp, c.channelParams(s.EndpointURL, p.remoteCert), log)
	if err != nil {
		switch {
		case p.fromCache:
			f.Forget(s.ServerURI) // the cached certificate may be stale
		case p.pinned && !errors.Is(err, context.Canceled):
			// A server with another certificate cannot decrypt our
			// OpenSecureChannel and just closes. Learn its certificate
			// on the next dial to report it.
			f.setSuspect(s.ServerURI)
			err = fmt.Errorf("%w (if the server no longer presents the pinned certificate %s, the next dial checks it by discovery)",
				err, thumbprintHex(p.remoteCert))
		}
		return nil, wrap(err)
	}
	c.ch.Store(ch)
	opened := time.Now()
	if err := c.createSession(ctx, ch, s.EndpointURL, p.endpoints); err != nil {
		ch.close(ctx)
		return nil, wrap(err)
	}
	created := time.Now()
	if err := c.activateSession(ctx, ch); err != nil {
		c.closeWithSession(ctx)
		return nil, wrap(err)
	}
	activated := time.Now()
	if err := c.loadServerInfo(ctx); err != nil {
		c.closeWithSession(ctx)
		return nil, wrap(err)
	}
	log.Debug("session setup", "channel", opened.Sub(begin), "create", created.Sub(opened),
		"activate", activated.Sub(created), "info", time.Since(activated))
	log.Info("session active", "policy", f.cfg.SecurityPolicy.String(), "mode", f.cfg.SecurityMode.String(),
		"identity", f.cfg.Identity, "namespaces", len(c.NamespaceArray()))
	c.activated()
	return c, nil
}

// channelParams are the Factory's channel parameters for a channel of c,
// which reports its loss to c.
func (c *Client) channelParams(endpointURL string, remoteCert []byte) channelParams {
	p := c.f.channelParams(endpointURL, remoteCert)
	p.onLost = c.channelLost
	return p
}

func (f *Factory) channelParams(endpointURL string, remoteCert []byte) channelParams {
	p := channelParams{
		endpointURL:    endpointURL,
		policy:         f.cfg.SecurityPolicy,
		mode:           f.cfg.SecurityMode,
		keyPair:        f.cfg.KeyPair,
		remoteCert:     remoteCert,
		lifetime:       f.cfg.ChannelLifetime,
		requestTimeout: f.cfg.RequestTimeout,
		bufferSize:     uint32(f.cfg.BufferSize),
	}
	if f.cfg.Identity.kind == IdentityCertificate {
		p.userKey = f.cfg.Identity.key
	}
	return p
}

// discover runs GetEndpoints over a None channel on tcp, closes it and
// caches the result. It returns ErrRedialNeeded on success.
func (f *Factory) discover(ctx context.Context, s *Session, tcp *net.TCPConn, log *slog.Logger) error {
	p := f.channelParams(s.EndpointURL, nil)
	p.policy, p.mode, p.userKey = SecurityPolicyNone, SecurityModeNone, nil
	ch, err := openChannel(ctx, tcp, p, log)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	c := &Client{f: f, cfg: &f.cfg, log: log, serverURI: s.ServerURI, endpoint: s.EndpointURL}
	c.ch.Store(ch)
	res, err := call[*ua.GetEndpointsResponse](ctx, c, &ua.GetEndpointsRequest{EndpointURL: s.EndpointURL})
	ch.close(ctx)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	eps := res.Endpoints
	ep := selectEndpoint(eps, f.cfg.SecurityPolicy, f.cfg.SecurityMode)
	if ep == nil {
		return noMatchingEndpoint(s.ServerURI, eps, f.cfg)
	}
	if _, err := f.cfg.Trust.check(s.ServerURI, ep.ServerCertificate, time.Now()); err != nil {
		return err
	}
	f.remember(s.ServerURI, detachEndpoints(eps)) // kept for good: no slice of the response's buffer
	log.Info("endpoints discovered, waiting for the next dial", "endpoints", len(eps),
		"thumbprint", thumbprintHex(ep.ServerCertificate))
	return fmt.Errorf("%d endpoints: %w", len(eps), ErrRedialNeeded)
}

// selectEndpoint returns the endpoint with policy and mode and the highest
// SecurityLevel, or nil.
func selectEndpoint(eps []*ua.EndpointDescription, policy SecurityPolicy, mode SecurityMode) *ua.EndpointDescription {
	var best *ua.EndpointDescription
	for _, ep := range eps {
		if ep == nil || ep.SecurityPolicyURI != policy.URI() || ep.SecurityMode != mode.UA() {
			continue
		}
		if best == nil || ep.SecurityLevel > best.SecurityLevel {
			best = ep
		}
	}
	return best
}

func noMatchingEndpoint(serverURI string, eps []*ua.EndpointDescription, cfg ClientConfig) error {
	offered := make([]string, 0, len(eps))
	for _, ep := range eps {
		if ep != nil {
			offered = append(offered, fmt.Sprintf("%s/%s", ep.SecurityPolicyURI, ep.SecurityMode))
		}
	}
	return fmt.Errorf("%w: want %s/%s, server %q offers %q", ErrNoMatchingEndpoint,
		cfg.SecurityPolicy, cfg.SecurityMode, serverURI, offered)
}
