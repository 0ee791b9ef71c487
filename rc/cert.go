package rc

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrInvalidCertificate is wrapped by errors about certificates or keys that
// cannot be used: unparsable, not RSA, mismatched key, missing ApplicationUri.
var ErrInvalidCertificate = errors.New("rc: invalid certificate")

// KeyPair is an application instance certificate (DER) with its RSA private
// key. Specification: Part 6, 6.2.2 (application instance certificate).
type KeyPair struct {
	// Certificate is the DER encoded X.509 certificate.
	Certificate []byte
	// PrivateKey is the certificate's RSA private key.
	PrivateKey *rsa.PrivateKey
}

// String describes the key pair by its certificate's thumbprint.
func (kp KeyPair) String() string {
	if len(kp.Certificate) == 0 {
		return "no certificate"
	}
	return "certificate " + thumbprintHex(kp.Certificate)
}

// Format implements fmt.Formatter so that no verb prints the private key.
func (kp KeyPair) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(kp.String())) }

// LogValue implements slog.LogValuer; it never logs the private key.
func (kp KeyPair) LogValue() slog.Value { return slog.StringValue(kp.String()) }

// MarshalJSON encodes the key pair as its description, never the key.
func (kp KeyPair) MarshalJSON() ([]byte, error) { return json.Marshal(kp.String()) }

// LoadKeyPair reads a certificate and its private key from files. Each file
// may be PEM or DER; keys may be PKCS#1 or PKCS#8 and must be RSA.
func LoadKeyPair(certFile, keyFile string) (KeyPair, error) {
	certData, err := os.ReadFile(certFile)
	if err != nil {
		return KeyPair{}, fmt.Errorf("rc: certificate file: %w", err)
	}
	keyData, err := os.ReadFile(keyFile)
	if err != nil {
		return KeyPair{}, fmt.Errorf("rc: private key file: %w", err)
	}
	kp, err := ParseKeyPair(certData, keyData)
	if err != nil {
		return KeyPair{}, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	return kp, nil
}

// ParseKeyPair parses a certificate and a private key, each PEM or DER.
func ParseKeyPair(certData, keyData []byte) (KeyPair, error) {
	der, err := ParseCertificate(certData)
	if err != nil {
		return KeyPair{}, err
	}
	key, err := parsePrivateKey(keyData)
	if err != nil {
		return KeyPair{}, err
	}
	if err := checkKeyPair(der, key); err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Certificate: der, PrivateKey: key}, nil
}

// ParseCertificate returns the DER bytes of the first certificate in data,
// which may be PEM ("CERTIFICATE" block) or DER. It checks that the
// certificate parses.
func ParseCertificate(data []byte) ([]byte, error) {
	der := data
	if isPEM(data) {
		blocks := pemBlocks(data, func(typ string) bool { return typ == "CERTIFICATE" })
		if len(blocks) == 0 {
			return nil, fmt.Errorf("%w: no CERTIFICATE block in PEM data", ErrInvalidCertificate)
		}
		der = blocks[0]
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCertificate, err)
	}
	return der, nil
}

func isPEM(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN"))
}

// pemBlocks returns the bytes of the PEM blocks in data whose type want
// accepts, in order.
func pemBlocks(data []byte, want func(typ string) bool) [][]byte {
	var out [][]byte
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out
		}
		if want(block.Type) {
			out = append(out, block.Bytes)
		}
	}
}

func parsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	der := data
	if isPEM(data) {
		blocks := pemBlocks(data, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") })
		if len(blocks) == 0 {
			return nil, fmt.Errorf("%w: no PRIVATE KEY block in PEM data", ErrInvalidCertificate)
		}
		der = blocks[0]
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: private key is neither PKCS#1 nor PKCS#8", ErrInvalidCertificate)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is %T, want RSA", ErrInvalidCertificate, k)
	}
	return rk, nil
}

// checkKeyPair checks that der is an RSA certificate for key.
func checkKeyPair(der []byte, key *rsa.PrivateKey) error {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCertificate, err)
	}
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: certificate %s has a %T key, want RSA", ErrInvalidCertificate, thumbprintHex(der), c.PublicKey)
	}
	if !pub.Equal(&key.PublicKey) {
		return fmt.Errorf("%w: private key does not match certificate %s", ErrInvalidCertificate, thumbprintHex(der))
	}
	return nil
}

// certificateURI returns the first URI in the certificate's SubjectAltName
// extension: an OPC UA application's ApplicationUri (Part 6, 6.2.2).
func certificateURI(c *x509.Certificate) string {
	for _, u := range c.URIs {
		return u.String()
	}
	return ""
}

// Thumbprint returns the SHA-1 thumbprint of a DER certificate as upper-case
// hex, the form OPC UA tools display. Specification: Part 6, 6.2.2.
func Thumbprint(der []byte) string { return thumbprintHex(der) }

func thumbprintHex(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// CertificateTemplate describes a self-signed application instance
// certificate for GenerateKeyPair.
type CertificateTemplate struct {
	// ApplicationURI goes into the SubjectAltName as a URI. Required: servers
	// check it against the ApplicationUri the client sends in CreateSession.
	ApplicationURI string
	// CommonName is the subject CN; default "rcbridge".
	CommonName string
	// Organization is the subject O; optional.
	Organization string
	// Hosts are DNS names or IP addresses added to the SubjectAltName.
	Hosts []string
	// Validity is how long the certificate is valid; default 2 years.
	Validity time.Duration
	// KeyBits is the RSA key size; default 2048. Basic256Sha256 and the Aes
	// policies accept 2048 to 4096 bits.
	KeyBits int
}

// GenerateKeyPair creates a self-signed application instance certificate with
// the key usages OPC UA requires (Part 6, 6.2.2): digitalSignature,
// nonRepudiation, keyEncipherment, dataEncipherment and keyCertSign, extended
// key usages serverAuth and clientAuth, and ApplicationURI in the
// SubjectAltName.
func GenerateKeyPair(t CertificateTemplate) (KeyPair, error) {
	u, err := url.Parse(t.ApplicationURI)
	if err != nil || t.ApplicationURI == "" || u.Scheme == "" {
		return KeyPair{}, fmt.Errorf("%w: ApplicationURI %q is not an absolute URI", ErrInvalidCertificate, t.ApplicationURI)
	}
	if t.CommonName == "" {
		t.CommonName = "rcbridge"
	}
	if t.Validity <= 0 {
		t.Validity = 2 * 365 * 24 * time.Hour
	}
	if t.KeyBits == 0 {
		t.KeyBits = 2048
	}
	if t.KeyBits < 2048 || t.KeyBits > 4096 {
		return KeyPair{}, fmt.Errorf("%w: KeyBits %d outside 2048..4096", ErrInvalidCertificate, t.KeyBits)
	}
	key, err := rsa.GenerateKey(rand.Reader, t.KeyBits)
	if err != nil {
		return KeyPair{}, fmt.Errorf("rc: generating RSA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return KeyPair{}, fmt.Errorf("rc: generating serial number: %w", err)
	}
	now := time.Now().Add(-5 * time.Minute) // tolerate small clock skew
	subject := pkix.Name{CommonName: t.CommonName}
	if t.Organization != "" {
		subject.Organization = []string{t.Organization}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now,
		NotAfter:     now.Add(t.Validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	for _, h := range t.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("rc: creating certificate: %w", err)
	}
	return KeyPair{Certificate: der, PrivateKey: key}, nil
}

// CertificatePEM returns the certificate as a PEM block.
func (kp KeyPair) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Certificate})
}

// PrivateKeyPEM returns the private key as a PKCS#8 PEM block.
func (kp KeyPair) PrivateKeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(kp.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("rc: encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes the certificate (PEM, mode 0644) and the private key
// (PEM, mode 0600). It refuses to overwrite existing files.
func (kp KeyPair) WriteFiles(certFile, keyFile string) error {
	keyPEM, err := kp.PrivateKeyPEM()
	if err != nil {
		return err
	}
	if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(certFile, kp.CertificatePEM(), 0o644); err != nil {
		_ = os.Remove(keyFile)
		return err
	}
	return nil
}

func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("rc: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(name)
		return fmt.Errorf("rc: writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("rc: writing %s: %w", name, err)
	}
	return nil
}
