package rc

import (
	"crypto/rsa"
	"fmt"
	"log/slog"
)

// redacted is what a Secret prints, logs and marshals as.
const redacted = "REDACTED"

// Secret holds a password or similar credential. It never reveals its value
// through fmt, log/slog, encoding/json or encoding.TextMarshaler: all of them
// print "REDACTED". Only Reveal returns the value. The zero value is the
// empty secret.
//
// Secret implements encoding.TextUnmarshaler so that configuration loaders
// can fill it.
type Secret struct {
	v string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Do not log it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns "REDACTED".
func (s Secret) String() string { return redacted }

// GoString returns "REDACTED".
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter: every verb prints "REDACTED".
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler; it returns "REDACTED".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Secret) UnmarshalText(b []byte) error {
	s.v = string(b)
	return nil
}

// IdentityKind is the kind of user identity a session is activated with.
// Specification: Part 4, 7.41 (UserIdentityToken).
type IdentityKind uint8

// The identity kinds.
const (
	IdentityAnonymous IdentityKind = iota
	IdentityUserName
	IdentityCertificate
)

// String returns "anonymous", "username" or "certificate".
func (k IdentityKind) String() string {
	switch k {
	case IdentityAnonymous:
		return "anonymous"
	case IdentityUserName:
		return "username"
	case IdentityCertificate:
		return "certificate"
	}
	return fmt.Sprintf("IdentityKind(%d)", uint8(k))
}

// Identity is the user identity a session is activated with. The zero value
// is the anonymous identity. Build one with AnonymousIdentity,
// UserNameIdentity or CertificateIdentity.
//
// An Identity logs and prints without its secrets: the password is a Secret
// and the private key is never formatted.
type Identity struct {
	kind     IdentityKind
	user     string
	password Secret
	cert     []byte
	key      *rsa.PrivateKey
}

// AnonymousIdentity returns the anonymous identity.
func AnonymousIdentity() Identity { return Identity{} }

// UserNameIdentity returns a user name and password identity. The password is
// encrypted for the server as its user token policy requires (Part 4, 7.41.3).
func UserNameIdentity(user string, password Secret) Identity {
	return Identity{kind: IdentityUserName, user: user, password: password}
}

// CertificateIdentity returns an X.509 user identity: the DER certificate
// and its private key, which signs the server's nonce (Part 4, 7.41.4).
func CertificateIdentity(certDER []byte, key *rsa.PrivateKey) Identity {
	return Identity{kind: IdentityCertificate, cert: certDER, key: key}
}

// Kind returns the identity's kind.
func (id Identity) Kind() IdentityKind { return id.kind }

// UserName returns the user name of a user name identity.
func (id Identity) UserName() string { return id.user }

// String describes the identity without secrets.
func (id Identity) String() string {
	switch id.kind {
	case IdentityUserName:
		return fmt.Sprintf("username %q", id.user)
	case IdentityCertificate:
		return "certificate " + thumbprintHex(id.cert)
	}
	return id.kind.String()
}

// Format implements fmt.Formatter so that no verb, %#v included, prints the
// password or the private key.
func (id Identity) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(id.String())) }

// LogValue implements slog.LogValuer.
func (id Identity) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", id.kind.String())}
	switch id.kind {
	case IdentityUserName:
		attrs = append(attrs, slog.String("user", id.user))
	case IdentityCertificate:
		attrs = append(attrs, slog.String("thumbprint", thumbprintHex(id.cert)))
	}
	return slog.GroupValue(attrs...)
}

func (id Identity) validate() error {
	switch id.kind {
	case IdentityAnonymous:
		return nil
	case IdentityUserName:
		if id.user == "" {
			return fmt.Errorf("user name identity: empty user name")
		}
		return nil
	case IdentityCertificate:
		if len(id.cert) == 0 || id.key == nil {
			return fmt.Errorf("certificate identity: certificate and private key are required")
		}
		return checkKeyPair(id.cert, id.key)
	}
	return fmt.Errorf("identity: unknown kind %d", uint8(id.kind))
}
