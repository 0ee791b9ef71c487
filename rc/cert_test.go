package rc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustKeyPair(t testing.TB, uri string) KeyPair {
	t.Helper()
	kp, err := GenerateKeyPair(CertificateTemplate{ApplicationURI: uri, Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestGenerateKeyPair(t *testing.T) {
	kp := mustKeyPair(t, "urn:rcbridge:test")
	c, err := x509.ParseCertificate(kp.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if got := certificateURI(c); got != "urn:rcbridge:test" {
		t.Errorf("ApplicationUri = %q", got)
	}
	wantUsage := x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
		x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign
	if c.KeyUsage != wantUsage {
		t.Errorf("KeyUsage = %b, want %b", c.KeyUsage, wantUsage)
	}
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
	}
	if !slices.Equal(c.DNSNames, []string{"localhost"}) || len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal([]byte{127, 0, 0, 1}) {
		t.Errorf("SAN DNS %v IP %v", c.DNSNames, c.IPAddresses)
	}
	if c.PublicKey.(interface{ Size() int }).Size() != 256 {
		t.Error("want a 2048-bit key")
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if time.Until(c.NotAfter) < 365*24*time.Hour {
		t.Errorf("NotAfter %s too early", c.NotAfter)
	}

	for _, tmpl := range []CertificateTemplate{
		{},
		{ApplicationURI: "no scheme"},
		{ApplicationURI: "urn:x", KeyBits: 1024},
	} {
		if _, err := GenerateKeyPair(tmpl); !errors.Is(err, ErrInvalidCertificate) {
			t.Errorf("GenerateKeyPair(%+v) = %v, want ErrInvalidCertificate", tmpl, err)
		}
	}
}

func TestKeyPairFiles(t *testing.T) {
	kp := mustKeyPair(t, "urn:rcbridge:test")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := kp.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", st.Mode(), err)
	}
	got, err := LoadKeyPair(certFile, keyFile)
	if err != nil || !slices.Equal(got.Certificate, kp.Certificate) || !got.PrivateKey.Equal(kp.PrivateKey) {
		t.Fatalf("PEM round trip: %v", err)
	}
	if err := kp.WriteFiles(certFile, keyFile); err == nil {
		t.Error("WriteFiles overwrote existing files")
	}

	// DER certificate with a PKCS#1 DER key.
	derCert, derKey := filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.der")
	writeFile(t, derCert, kp.Certificate)
	writeFile(t, derKey, x509.MarshalPKCS1PrivateKey(kp.PrivateKey))
	if got, err := LoadKeyPair(derCert, derKey); err != nil || !got.PrivateKey.Equal(kp.PrivateKey) {
		t.Fatalf("DER: %v", err)
	}

	other := mustKeyPair(t, "urn:rcbridge:other")
	otherKey := filepath.Join(dir, "other.key")
	writeFile(t, otherKey, x509.MarshalPKCS1PrivateKey(other.PrivateKey))
	if _, err := LoadKeyPair(certFile, otherKey); !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("mismatched key: %v, want ErrInvalidCertificate", err)
	}
	if _, err := LoadKeyPair(keyFile, keyFile); !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("key as certificate: %v, want ErrInvalidCertificate", err)
	}
	if _, err := LoadKeyPair(filepath.Join(dir, "missing"), keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecFile := filepath.Join(dir, "ec.pem")
	writeFile(t, ecFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	if _, err := LoadKeyPair(certFile, ecFile); !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("EC key: %v, want ErrInvalidCertificate", err)
	}
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// signedBy issues a certificate for uri signed by the CA ca.
func signedBy(t *testing.T, ca KeyPair, uri string) []byte {
	t.Helper()
	caCert, err := x509.ParseCertificate(ca.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustKeyPair(t, uri)
	tmpl, _ := x509.ParseCertificate(leaf.Certificate)
	tmpl.SerialNumber = big.NewInt(42)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &leaf.PrivateKey.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newCA(t *testing.T) KeyPair {
	t.Helper()
	kp := mustKeyPair(t, "urn:rcbridge:ca")
	tmpl, _ := x509.ParseCertificate(kp.Certificate)
	tmpl.IsCA = true
	tmpl.Subject, tmpl.RawSubject = pkix.Name{CommonName: "test CA"}, nil
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &kp.PrivateKey.PublicKey, kp.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{Certificate: der, PrivateKey: kp.PrivateKey}
}

func TestTrustCheck(t *testing.T) {
	const uri = "urn:plant:server"
	server := mustKeyPair(t, uri)
	other := mustKeyPair(t, "urn:plant:other")
	expired, err := GenerateKeyPair(CertificateTemplate{ApplicationURI: uri, Validity: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t)
	caSigned := signedBy(t, ca, uri)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecTmpl, _ := x509.ParseCertificate(server.Certificate)
	ecTmpl.SignatureAlgorithm, ecTmpl.PublicKey = x509.UnknownSignatureAlgorithm, nil
	ecCert, err := x509.CreateCertificate(rand.Reader, ecTmpl, ecTmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "server.pem"), server.CertificatePEM())
	writeFile(t, filepath.Join(dir, "other.der"), other.Certificate)
	writeFile(t, filepath.Join(dir, "ca.der"), ca.Certificate)
	writeFile(t, filepath.Join(dir, "README"), []byte("not a certificate"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	pinned := func(der []byte) map[string][]byte { return map[string][]byte{uri: der} }

	cases := []struct {
		name  string
		trust TrustConfig
		der   []byte
		want  error
	}{
		{"pinned", TrustConfig{Pinned: pinned(server.Certificate)}, server.Certificate, nil},
		{"pinned, chain presented", TrustConfig{Pinned: pinned(server.Certificate)}, append(slices.Clone(server.Certificate), ca.Certificate...), nil},
		{"pinned mismatch", TrustConfig{Pinned: pinned(other.Certificate)}, server.Certificate, ErrUntrustedCertificate},
		{"pin wins over directory", TrustConfig{Pinned: pinned(other.Certificate), Dir: dir}, server.Certificate, ErrUntrustedCertificate},
		{"in directory", TrustConfig{Dir: dir}, server.Certificate, nil},
		{"signed by a CA in directory", TrustConfig{Dir: dir}, caSigned, nil},
		{"not in directory", TrustConfig{Dir: t.TempDir()}, server.Certificate, ErrUntrustedCertificate},
		{"nothing configured", TrustConfig{}, server.Certificate, ErrUntrustedCertificate},
		{"ApplicationUri mismatch", TrustConfig{Dir: dir}, other.Certificate, ErrApplicationURIMismatch},
		{"expired", TrustConfig{Pinned: pinned(expired.Certificate)}, expired.Certificate, ErrCertificateTime},
		{"not RSA", TrustConfig{Pinned: pinned(ecCert)}, ecCert, ErrInvalidCertificate},
		{"garbage", TrustConfig{Dir: dir}, []byte("garbage"), ErrInvalidCertificate},
		{"empty", TrustConfig{Dir: dir}, nil, ErrInvalidCertificate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := tc.trust.check(uri, tc.der, time.Now())
			if !errors.Is(err, tc.want) {
				t.Fatalf("check = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				if l, _, _ := leafCertificate(tc.der); !slices.Equal(leaf, l) {
					t.Error("check did not return the leaf")
				}
				return
			}
			var ce *CertificateError
			if !errors.As(err, &ce) || ce.ServerURI != uri {
				t.Fatalf("error %v is not a *CertificateError for %q", err, uri)
			}
			if len(tc.der) > 20 {
				if l, _, lerr := leafCertificate(tc.der); lerr == nil && ce.Thumbprint != Thumbprint(l) {
					t.Errorf("thumbprint %s, want %s", ce.Thumbprint, Thumbprint(l))
				}
			}
			if !strings.Contains(err.Error(), uri) || !strings.Contains(err.Error(), ce.Thumbprint) {
				t.Errorf("message %q does not name the server and thumbprint", err)
			}
		})
	}
}
