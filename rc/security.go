package rc

import (
	"errors"
	"fmt"

	"github.com/gopcua/opcua/ua"
)

// ErrInvalidSecurity is wrapped by every error about an unknown security
// policy or mode name.
var ErrInvalidSecurity = errors.New("rc: invalid security setting")

// SecurityPolicy is an OPC UA security policy the client can use for its
// secure channel. Specification: Part 7, 6.6 (security policy profiles).
//
// The zero value is SecurityPolicyNone. SecurityPolicy implements
// encoding.TextMarshaler and encoding.TextUnmarshaler with the short names
// "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep" and
// "Aes256_Sha256_RsaPss"; the full policy URIs are accepted as well.
type SecurityPolicy uint8

// The security policies rc supports: those of gopcua's uapolicy package that
// are not deprecated.
const (
	SecurityPolicyNone SecurityPolicy = iota
	SecurityPolicyBasic256Sha256
	SecurityPolicyAes128Sha256RsaOaep
	SecurityPolicyAes256Sha256RsaPss
)

var securityPolicies = [...]struct{ name, uri string }{
	SecurityPolicyNone:                {"None", ua.SecurityPolicyURINone},
	SecurityPolicyBasic256Sha256:      {"Basic256Sha256", ua.SecurityPolicyURIBasic256Sha256},
	SecurityPolicyAes128Sha256RsaOaep: {"Aes128_Sha256_RsaOaep", ua.SecurityPolicyURIAes128Sha256RsaOaep},
	SecurityPolicyAes256Sha256RsaPss:  {"Aes256_Sha256_RsaPss", ua.SecurityPolicyURIAes256Sha256RsaPss},
}

// ParseSecurityPolicy parses a policy's short name or URI.
func ParseSecurityPolicy(s string) (SecurityPolicy, error) {
	for i, p := range securityPolicies {
		if s == p.name || s == p.uri {
			return SecurityPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown security policy %q (want None, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss)", ErrInvalidSecurity, s)
}

func (p SecurityPolicy) valid() bool { return int(p) < len(securityPolicies) }

// String returns the policy's short name.
func (p SecurityPolicy) String() string {
	if !p.valid() {
		return fmt.Sprintf("SecurityPolicy(%d)", uint8(p))
	}
	return securityPolicies[p].name
}

// URI returns the policy URI, for example
// "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256".
func (p SecurityPolicy) URI() string {
	if !p.valid() {
		return ""
	}
	return securityPolicies[p].uri
}

// MarshalText implements encoding.TextMarshaler.
func (p SecurityPolicy) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("%w: security policy %d", ErrInvalidSecurity, uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *SecurityPolicy) UnmarshalText(b []byte) error {
	v, err := ParseSecurityPolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// SecurityMode is the message security mode of a secure channel.
// Specification: Part 4, 7.20 (MessageSecurityMode).
//
// The zero value is SecurityModeNone. Text forms: "None", "Sign",
// "SignAndEncrypt".
type SecurityMode uint8

// The message security modes.
const (
	SecurityModeNone SecurityMode = iota
	SecurityModeSign
	SecurityModeSignAndEncrypt
)

var securityModes = [...]struct {
	name string
	ua   ua.MessageSecurityMode
}{
	SecurityModeNone:           {"None", ua.MessageSecurityModeNone},
	SecurityModeSign:           {"Sign", ua.MessageSecurityModeSign},
	SecurityModeSignAndEncrypt: {"SignAndEncrypt", ua.MessageSecurityModeSignAndEncrypt},
}

// ParseSecurityMode parses "None", "Sign" or "SignAndEncrypt".
func ParseSecurityMode(s string) (SecurityMode, error) {
	for i, m := range securityModes {
		if s == m.name {
			return SecurityMode(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown security mode %q (want None, Sign or SignAndEncrypt)", ErrInvalidSecurity, s)
}

func (m SecurityMode) valid() bool { return int(m) < len(securityModes) }

// String returns the mode's name.
func (m SecurityMode) String() string {
	if !m.valid() {
		return fmt.Sprintf("SecurityMode(%d)", uint8(m))
	}
	return securityModes[m].name
}

// UA returns the mode as gopcua's ua.MessageSecurityMode.
func (m SecurityMode) UA() ua.MessageSecurityMode {
	if !m.valid() {
		return ua.MessageSecurityModeInvalid
	}
	return securityModes[m].ua
}

// MarshalText implements encoding.TextMarshaler.
func (m SecurityMode) MarshalText() ([]byte, error) {
	if !m.valid() {
		return nil, fmt.Errorf("%w: security mode %d", ErrInvalidSecurity, uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *SecurityMode) UnmarshalText(b []byte) error {
	v, err := ParseSecurityMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
