package rc

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Certificate check failures. A *CertificateError wraps exactly one of them.
var (
	// ErrUntrustedCertificate means the server certificate is neither pinned
	// for the server nor in (or signed by a CA in) the trusted directory.
	ErrUntrustedCertificate = errors.New("rc: server certificate not trusted")
	// ErrApplicationURIMismatch means the server certificate's ApplicationUri
	// (SubjectAltName URI) is not the ServerUri of the ReverseHello.
	ErrApplicationURIMismatch = errors.New("rc: server certificate ApplicationUri does not match ServerUri")
	// ErrCertificateTime means the server certificate is expired or not yet
	// valid.
	ErrCertificateTime = errors.New("rc: server certificate outside its validity period")
)

// CertificateError reports a server certificate that failed the trust rules.
// It names the server and the certificate's SHA-1 thumbprint so that an
// operator can find the certificate and decide whether to trust it.
type CertificateError struct {
	// ServerURI is the ServerUri of the ReverseHello.
	ServerURI string
	// Thumbprint is the certificate's SHA-1 thumbprint, upper-case hex.
	Thumbprint string
	// Reason details the failure.
	Reason string
	// Err is ErrUntrustedCertificate, ErrApplicationURIMismatch,
	// ErrCertificateTime or ErrInvalidCertificate.
	Err error
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("%v: server %q, thumbprint %s: %s", e.Err, e.ServerURI, e.Thumbprint, e.Reason)
}

func (e *CertificateError) Unwrap() error { return e.Err }

// TrustConfig says which server certificates the client trusts when security
// is on. Specification: Part 4, 6.1.3 (certificate validation).
//
// A certificate is trusted when it is the pinned certificate of the server
// that presents it, or when it is in Dir byte for byte, or when it is signed
// by a CA certificate in Dir. Pinning wins: a server with a pinned
// certificate must present exactly that certificate. In every case the
// certificate must be within its validity period, carry an RSA key, and its
// ApplicationUri must equal the ReverseHello's ServerUri.
//
// Revocation lists are not consulted.
type TrustConfig struct {
	// Pinned maps a ServerUri to the DER certificate that server must present.
	Pinned map[string][]byte
	// Dir is a directory of trusted certificates: PEM (any number of
	// CERTIFICATE blocks) or DER files. It is read at every check, so
	// certificates added there take effect on the server's next dial.
	Dir string
}

func (t TrustConfig) validate() error {
	var errs []error
	for uri, der := range t.Pinned {
		if _, _, err := rsaCertificate(der); err != nil {
			errs = append(errs, fmt.Errorf("Trust.Pinned[%q]: %w", uri, err))
		}
	}
	if t.Dir != "" {
		if st, err := os.Stat(t.Dir); err != nil {
			errs = append(errs, fmt.Errorf("Trust.Dir: %w", err))
		} else if !st.IsDir() {
			errs = append(errs, fmt.Errorf("Trust.Dir %q: not a directory", t.Dir))
		}
	}
	return errors.Join(errs...)
}

// pinned returns the certificate pinned for serverURI.
func (t TrustConfig) pinned(serverURI string) []byte { return t.Pinned[serverURI] }

// check applies the trust rules to der presented by (or discovered for)
// serverURI, at time now. der may be a chain; check returns its leaf, the
// certificate the channel uses.
func (t TrustConfig) check(serverURI string, der []byte, now time.Time) ([]byte, error) {
	fail := func(sentinel error, format string, args ...any) ([]byte, error) {
		return nil, &CertificateError{ServerURI: serverURI, Thumbprint: thumbprintHex(der), Reason: fmt.Sprintf(format, args...), Err: sentinel}
	}
	if len(der) == 0 {
		return fail(ErrInvalidCertificate, "server sent no certificate")
	}
	leaf, cert, err := rsaCertificate(der)
	if err != nil {
		return fail(ErrInvalidCertificate, "%v", err)
	}
	der = leaf // thumbprints name the leaf
	if pin := t.pinned(serverURI); pin != nil {
		if pinLeaf, _, err := leafCertificate(pin); err != nil || !bytes.Equal(pinLeaf, leaf) {
			return fail(ErrUntrustedCertificate, "does not match the certificate pinned for this server (thumbprint %s)", thumbprintHex(pinLeaf))
		}
	} else if err := t.checkDir(cert, now); err != nil {
		return fail(ErrUntrustedCertificate, "%v", err)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fail(ErrCertificateTime, "valid from %s to %s", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if uri := certificateURI(cert); uri != serverURI {
		return fail(ErrApplicationURIMismatch, "certificate ApplicationUri is %q", uri)
	}
	return leaf, nil
}

// checkDir reports why cert is not trusted by the directory, or nil.
func (t TrustConfig) checkDir(cert *x509.Certificate, now time.Time) error {
	if t.Dir == "" {
		return errors.New("not pinned for this server and no trusted directory configured")
	}
	certs, err := readCertDir(t.Dir)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	haveCA := false
	for _, c := range certs {
		if bytes.Equal(c.Raw, cert.Raw) {
			return nil
		}
		if c.IsCA && c.BasicConstraintsValid && !bytes.Equal(c.RawSubject, cert.RawSubject) {
			roots.AddCert(c)
			haveCA = true
		}
	}
	if haveCA {
		_, err := cert.Verify(x509.VerifyOptions{
			Roots:       roots,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("not pinned for this server, not in the trusted directory %q and not signed by a CA there", t.Dir)
}

// readCertDir parses every certificate in dir. Files that hold no
// certificate are skipped; subdirectories are not read.
func readCertDir(dir string) ([]*x509.Certificate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading trusted directory: %w", err)
	}
	var certs []*x509.Certificate
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if !isPEM(data) {
			if c, err := x509.ParseCertificate(data); err == nil {
				certs = append(certs, c)
			}
			continue
		}
		for _, der := range pemBlocks(data, func(typ string) bool { return typ == "CERTIFICATE" }) {
			if c, err := x509.ParseCertificate(der); err == nil {
				certs = append(certs, c)
			}
		}
	}
	return certs, nil
}
