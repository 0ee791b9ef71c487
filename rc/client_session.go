package rc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Session setup errors.
var (
	// ErrSecurityCheck means the server failed a check of the session
	// handshake: a bad session signature, a certificate other than the
	// channel's, a short nonce, or endpoints that differ from the discovered
	// ones (a downgrade attempt). Specification: Part 4, 5.6.2.
	ErrSecurityCheck = errors.New("rc: session security check failed")
	// ErrNoUserTokenPolicy means the server offers no user token policy for
	// the configured identity.
	ErrNoUserTokenPolicy = errors.New("rc: server offers no user token policy for the identity")
	// ErrInsecurePassword means a password would be sent in clear: the
	// server's user token policy asks for no encryption and the channel is
	// not SignAndEncrypt. Set ClientConfig.AllowPlaintextPassword to allow.
	ErrInsecurePassword = errors.New("rc: refusing to send a password unencrypted")
)

// nonceLength is the length of our session nonce and the minimum we accept
// from the server when security is on. Specification: Part 4, 5.6.2.2.
const nonceLength = 32

// sessionState is what identifies and authenticates a session on the
// server, independent of the channel it runs on.
type sessionState struct {
	mu          sync.Mutex
	id          *ua.NodeID
	authToken   *ua.NodeID
	serverNonce []byte
	serverCert  []byte // leaf certificate from CreateSession, may be empty with None
	endpoints   []*ua.EndpointDescription
	timeout     time.Duration // revised session timeout
}

func (s *sessionState) token() *ua.NodeID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authToken
}

// createSession runs CreateSession (Part 4, 5.6.2) on ch for the server's
// endpointURL and checks the server's answer. discovered are endpoints from
// GetEndpoints, if any.
func (c *Client) createSession(ctx context.Context, ch *channel, endpointURL string, discovered []*ua.EndpointDescription) error {
	nonce := make([]byte, nonceLength)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("rc: session nonce: %w", err)
	}
	req := &ua.CreateSessionRequest{
		ClientDescription: &ua.ApplicationDescription{
			ApplicationURI:  c.cfg.ApplicationURI,
			ProductURI:      c.cfg.ProductURI,
			ApplicationName: ua.NewLocalizedText(c.cfg.ApplicationName),
			ApplicationType: ua.ApplicationTypeClient,
		},
		ServerURI:               c.serverURI,
		EndpointURL:             endpointURL,
		SessionName:             c.cfg.SessionName,
		ClientNonce:             nonce,
		RequestedSessionTimeout: float64(c.cfg.SessionTimeout / time.Millisecond),
		MaxResponseMessageSize:  ch.maxResponse,
	}
	secure := c.cfg.secure()
	if secure {
		req.ClientCertificate = c.cfg.KeyPair.Certificate
	}
	res, err := callOn[*ua.CreateSessionResponse](ctx, c, ch, req)
	if err != nil {
		return err
	}
	if res.AuthenticationToken == nil {
		return fmt.Errorf("%w: CreateSession returned no AuthenticationToken", ErrUnexpectedResponse)
	}
	var serverCert []byte
	if len(res.ServerCertificate) > 0 {
		if leaf, _, err := leafCertificate(res.ServerCertificate); err == nil {
			serverCert = leaf
		} else if secure {
			return fmt.Errorf("%w: CreateSession ServerCertificate: %w", ErrSecurityCheck, err)
		}
	}
	if secure {
		if err := checkCreateSession(ch, res, serverCert, nonce); err != nil {
			return err
		}
	}
	// The session's endpoints came over this channel (authenticated when
	// secure); the discovered ones only fill in when the server sends none.
	endpoints := res.ServerEndpoints
	if len(discovered) > 0 {
		if err := sameEndpoints(discovered, res.ServerEndpoints); err != nil {
			return err
		}
		if len(endpoints) == 0 {
			endpoints = discovered
		}
	}

	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	c.sess.id = detachNodeID(res.SessionID)
	c.sess.authToken = detachNodeID(res.AuthenticationToken)
	c.sess.serverNonce = bytes.Clone(res.ServerNonce)
	c.sess.serverCert = bytes.Clone(serverCert)
	c.sess.endpoints = detachEndpoints(endpoints)
	c.sess.timeout = time.Duration(res.RevisedSessionTimeout * float64(time.Millisecond))
	return nil
}

// checkCreateSession applies the checks of Part 4, 5.6.2 for a secure
// channel: the server certificate is the channel's, the server signed our
// certificate and nonce with it, and its nonce is long enough.
func checkCreateSession(ch *channel, res *ua.CreateSessionResponse, serverCert, nonce []byte) error {
	if !bytes.Equal(serverCert, ch.remoteCert) {
		return fmt.Errorf("%w: CreateSession certificate %s is not the channel's %s",
			ErrSecurityCheck, thumbprintHex(serverCert), thumbprintHex(ch.remoteCert))
	}
	if res.ServerSignature == nil {
		return fmt.Errorf("%w: CreateSession has no server signature", ErrSecurityCheck)
	}
	if err := ch.sc.VerifySessionSignature(serverCert, nonce, res.ServerSignature.Signature); err != nil {
		return fmt.Errorf("%w: server signature: %w", ErrSecurityCheck, err)
	}
	if len(res.ServerNonce) < nonceLength {
		return fmt.Errorf("%w: server nonce of %d bytes, want at least %d", ErrSecurityCheck, len(res.ServerNonce), nonceLength)
	}
	return nil
}

// sameEndpoints compares the endpoints CreateSession returned with what
// discovery found, so that a man in the middle of the None discovery channel
// cannot downgrade us (Part 4, 5.6.2.2). It compares the fields servers are
// asked to fill in: security policy, mode and level, and the user token
// policies; certificates only where both lists carry them.
func sameEndpoints(discovered, session []*ua.EndpointDescription) error {
	if len(session) == 0 {
		return nil // the server did not repeat them; nothing to compare
	}
	key := func(ep *ua.EndpointDescription) string {
		var tokens []string
		for _, p := range ep.UserIdentityTokens {
			if p != nil {
				tokens = append(tokens, fmt.Sprintf("%d:%s", p.TokenType, p.SecurityPolicyURI))
			}
		}
		slices.Sort(tokens)
		return fmt.Sprintf("%s|%d|%d|%q", ep.SecurityPolicyURI, ep.SecurityMode, ep.SecurityLevel, tokens)
	}
	set := func(eps []*ua.EndpointDescription) []string {
		var out []string
		for _, ep := range eps {
			if ep != nil {
				out = append(out, key(ep))
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	if !slices.Equal(set(discovered), set(session)) {
		return fmt.Errorf("%w: CreateSession endpoints differ from the discovered endpoints", ErrSecurityCheck)
	}
	for _, s := range session {
		if s == nil || len(s.ServerCertificate) == 0 {
			continue
		}
		sLeaf, _, _ := leafCertificate(s.ServerCertificate)
		for _, d := range discovered {
			if d == nil || len(d.ServerCertificate) == 0 || d.SecurityPolicyURI != s.SecurityPolicyURI || d.SecurityMode != s.SecurityMode {
				continue
			}
			if dLeaf, _, _ := leafCertificate(d.ServerCertificate); !bytes.Equal(dLeaf, sLeaf) {
				return fmt.Errorf("%w: CreateSession endpoint certificate %s differs from the discovered %s",
					ErrSecurityCheck, thumbprintHex(sLeaf), thumbprintHex(dLeaf))
			}
		}
	}
	return nil
}

// activateSession runs ActivateSession (Part 4, 5.6.3) on ch with the
// session's authentication token: after CreateSession, and again to move
// the session to a new channel.
func (c *Client) activateSession(ctx context.Context, ch *channel) error {
	c.sess.mu.Lock()
	serverCert, nonce, endpoints := c.sess.serverCert, c.sess.serverNonce, c.sess.endpoints
	c.sess.mu.Unlock()

	sig, sigAlg, err := ch.sc.NewSessionSignature(serverCert, nonce)
	if err != nil {
		return fmt.Errorf("rc: client signature: %w", err)
	}
	token, tokenSig, err := c.userToken(ch, serverCert, nonce, endpoints)
	if err != nil {
		return err
	}
	req := &ua.ActivateSessionRequest{
		ClientSignature:    &ua.SignatureData{Algorithm: sigAlg, Signature: sig},
		LocaleIDs:          c.cfg.Locales,
		UserIdentityToken:  ua.NewExtensionObject(token),
		UserTokenSignature: tokenSig,
	}
	res, err := callOn[*ua.ActivateSessionResponse](ctx, c, ch, req)
	if err != nil {
		return err
	}
	c.sess.mu.Lock()
	c.sess.serverNonce = bytes.Clone(res.ServerNonce)
	c.sess.mu.Unlock()
	return nil
}

// detachNodeID returns n without references into the buffer it was
// decoded from. gopcua decodes every ByteString (and the identifier of a
// String or ByteString NodeId) as a slice of the chunk it arrived in, and
// uacp.Conn.Receive allocates each chunk with the negotiated buffer size
// (64 KiB): a nonce, certificate or NodeId kept from a response would keep
// that whole buffer alive for the session's lifetime. The copy is decoded
// from n's own encoding, a buffer of n's size.
func detachNodeID(n *ua.NodeID) *ua.NodeID {
	if n == nil || (n.Type() != ua.NodeIDTypeString && n.Type() != ua.NodeIDTypeByteString) {
		return n
	}
	b, err := n.Encode()
	if err != nil {
		return n
	}
	d := new(ua.NodeID)
	if _, err := d.Decode(b); err != nil {
		return n
	}
	return d
}

// detachEndpoints returns copies of eps that share no bytes with the
// response they came in (see detachNodeID): the certificates are the only
// ByteStrings of an EndpointDescription.
func detachEndpoints(eps []*ua.EndpointDescription) []*ua.EndpointDescription {
	if eps == nil {
		return nil
	}
	out := make([]*ua.EndpointDescription, len(eps))
	for i, e := range eps {
		if e == nil {
			continue
		}
		d := *e
		d.ServerCertificate = bytes.Clone(e.ServerCertificate)
		out[i] = &d
	}
	return out
}

// userToken builds the UserIdentityToken for the configured identity from
// the server's user token policy (Part 4, 7.41).
func (c *Client) userToken(ch *channel, serverCert, nonce []byte, endpoints []*ua.EndpointDescription) (any, *ua.SignatureData, error) {
	id := c.cfg.Identity
	noSig := &ua.SignatureData{}
	tokenType := map[IdentityKind]ua.UserTokenType{
		IdentityAnonymous:   ua.UserTokenTypeAnonymous,
		IdentityUserName:    ua.UserTokenTypeUserName,
		IdentityCertificate: ua.UserTokenTypeCertificate,
	}[id.kind]
	pol := findUserTokenPolicy(endpoints, tokenType, c.cfg.SecurityPolicy, c.cfg.SecurityMode)
	if pol == nil {
		if id.kind == IdentityAnonymous && len(endpoints) == 0 {
			// The server did not tell; "Anonymous" is the customary id.
			return &ua.AnonymousIdentityToken{PolicyID: "Anonymous"}, noSig, nil
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrNoUserTokenPolicy, id.kind)
	}
	tokenPolicy := pol.SecurityPolicyURI
	if tokenPolicy == "" {
		tokenPolicy = c.cfg.SecurityPolicy.URI()
	}

	switch id.kind {
	case IdentityUserName:
		tok := &ua.UserNameIdentityToken{PolicyID: pol.PolicyID, UserName: id.user}
		if tokenPolicy == ua.SecurityPolicyURINone {
			if c.cfg.SecurityMode != SecurityModeSignAndEncrypt && !c.cfg.AllowPlaintextPassword {
				return nil, nil, fmt.Errorf("%w: user token policy %q has no encryption and the channel is %s",
					ErrInsecurePassword, pol.PolicyID, c.cfg.SecurityMode)
			}
			tok.Password = []byte(id.password.Reveal())
			return tok, noSig, nil
		}
		// The password is encrypted with the server certificate, so that
		// certificate must be trusted even on a None channel.
		if !c.cfg.secure() {
			if _, err := c.cfg.Trust.check(c.serverURI, serverCert, time.Now()); err != nil {
				return nil, nil, fmt.Errorf("rc: encrypting the password: %w", err)
			}
		}
		if len(nonce) < nonceLength {
			return nil, nil, fmt.Errorf("%w: server nonce of %d bytes, cannot encrypt the password", ErrSecurityCheck, len(nonce))
		}
		pass, alg, err := ch.sc.EncryptUserPassword(tokenPolicy, id.password.Reveal(), serverCert, nonce)
		if err != nil {
			return nil, nil, fmt.Errorf("rc: encrypting the password with %s: %w", tokenPolicy, err)
		}
		tok.Password, tok.EncryptionAlgorithm = pass, alg
		return tok, noSig, nil

	case IdentityCertificate:
		tok := &ua.X509IdentityToken{PolicyID: pol.PolicyID, CertificateData: id.cert}
		if tokenPolicy == ua.SecurityPolicyURINone {
			return tok, noSig, nil
		}
		if _, _, err := rsaCertificate(serverCert); err != nil {
			return nil, nil, fmt.Errorf("rc: signing the user token: server certificate: %w", err)
		}
		sig, alg, err := ch.sc.NewUserTokenSignature(tokenPolicy, serverCert, nonce)
		if err != nil {
			return nil, nil, fmt.Errorf("rc: signing the user token with %s: %w", tokenPolicy, err)
		}
		return tok, &ua.SignatureData{Algorithm: alg, Signature: sig}, nil
	}
	return &ua.AnonymousIdentityToken{PolicyID: pol.PolicyID}, noSig, nil
}

// findUserTokenPolicy returns the first user token policy of type t, looking
// first at the endpoints with our security, then at all of them.
func findUserTokenPolicy(eps []*ua.EndpointDescription, t ua.UserTokenType, policy SecurityPolicy, mode SecurityMode) *ua.UserTokenPolicy {
	for _, ours := range []bool{true, false} {
		for _, ep := range eps {
			if ep == nil || (ours && (ep.SecurityPolicyURI != policy.URI() || ep.SecurityMode != mode.UA())) {
				continue
			}
			for _, p := range ep.UserIdentityTokens {
				if p != nil && p.TokenType == t {
					return p
				}
			}
		}
	}
	return nil
}

// leafCertificate returns the first certificate of der, which may be a
// chain of concatenated DER certificates (Part 6, 6.2.3).
func leafCertificate(der []byte) ([]byte, *x509.Certificate, error) {
	certs, err := x509.ParseCertificates(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidCertificate, err)
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("%w: empty certificate", ErrInvalidCertificate)
	}
	return certs[0].Raw, certs[0], nil
}

// rsaCertificate returns the leaf of der if it carries an RSA key: gopcua's
// crypto helpers panic on other keys.
func rsaCertificate(der []byte) ([]byte, *x509.Certificate, error) {
	leaf, cert, err := leafCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, nil, fmt.Errorf("%w: key is %T, want RSA", ErrInvalidCertificate, cert.PublicKey)
	}
	return leaf, cert, nil
}
