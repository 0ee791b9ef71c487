package rc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

func generate(t *testing.T, uri string) rc.KeyPair {
	t.Helper()
	kp, err := rc.GenerateKeyPair(rc.CertificateTemplate{ApplicationURI: uri})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// trustDir returns a directory holding certs.
func trustDir(t *testing.T, certs ...rc.KeyPair) string {
	t.Helper()
	dir := t.TempDir()
	for i, kp := range certs {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".pem"), kp.CertificatePEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildErr connects srv (with ReverseHello h) and returns Build's error; a
// successful client is closed.
func buildErr(t *testing.T, f *rc.Factory, srv *rctest.Server, h rc.Hello) error {
	t.Helper()
	ln := listen(t)
	s, relay := reverseConnectWith(t, srv, ln, h)
	defer relay.Close()
	var c *rc.Client
	var err error
	finishes(t, 20*time.Second, func() {
		c, err = f.Build(ctxTimeout(t, 5*time.Second), s)
	})
	if err == nil {
		_ = c.Close(ctxTimeout(t, 5*time.Second))
	}
	return err
}

// TestSecurity runs against a gopcua server that advertises Basic256Sha256
// endpoints and UserName token policies. gopcua's server cannot open a
// Basic256Sha256 channel itself, so the secure session's success path is
// covered by the node-opcua integration tests.
func TestSecurity(t *testing.T) {
	serverKP := generate(t, rctest.DefaultServerURI)
	clientKP := generate(t, "urn:rcbridge:test-client")
	srv := newServer(t, rctest.Options{Certificate: serverKP})
	secure := func(trust rc.TrustConfig) rc.ClientConfig {
		return rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256,
			SecurityMode:   rc.SecurityModeSignAndEncrypt,
			KeyPair:        clientKP,
			Trust:          trust,
		}
	}

	t.Run("DiscoveryFirst", func(t *testing.T) {
		f := newFactory(t, secure(rc.TrustConfig{Dir: trustDir(t, serverKP)}))
		err := buildErr(t, f, srv, srv.Hello())
		if !errors.Is(err, rc.ErrRedialNeeded) {
			t.Fatalf("first dial: %v, want ErrRedialNeeded", err)
		}
		eps, ok := f.Endpoints(rctest.DefaultServerURI)
		if !ok || len(eps) < 3 {
			t.Fatalf("endpoints not cached: %v", eps)
		}
		// The second dial goes straight for the secure channel with the
		// cached certificate. gopcua's server fails it; a failed channel
		// drops the cache so that a changed certificate is rediscovered.
		err = buildErr(t, f, srv, srv.Hello())
		if errors.Is(err, rc.ErrRedialNeeded) || !errors.Is(err, rc.ErrHandshake) {
			t.Fatalf("second dial: %v, want a secure channel attempt (ErrHandshake from gopcua's server)", err)
		}
		if _, ok := f.Endpoints(rctest.DefaultServerURI); ok {
			t.Error("endpoints still cached after the secure channel failed")
		}
	})

	t.Run("UntrustedCertificate", func(t *testing.T) {
		f := newFactory(t, secure(rc.TrustConfig{Dir: trustDir(t, generate(t, rctest.DefaultServerURI))}))
		err := buildErr(t, f, srv, srv.Hello())
		var ce *rc.CertificateError
		if !errors.Is(err, rc.ErrUntrustedCertificate) || !errors.As(err, &ce) {
			t.Fatalf("Build = %v, want a *CertificateError with ErrUntrustedCertificate", err)
		}
		if ce.ServerURI != rctest.DefaultServerURI || ce.Thumbprint != rc.Thumbprint(serverKP.Certificate) {
			t.Errorf("error names %q / %s, want %q / %s", ce.ServerURI, ce.Thumbprint, rctest.DefaultServerURI, rc.Thumbprint(serverKP.Certificate))
		}
		if _, ok := f.Endpoints(rctest.DefaultServerURI); ok {
			t.Error("an untrusted discovery was cached")
		}
	})

	t.Run("ApplicationURIMismatch", func(t *testing.T) {
		// The certificate is trusted, but the ReverseHello claims another
		// server.
		f := newFactory(t, secure(rc.TrustConfig{Dir: trustDir(t, serverKP)}))
		err := buildErr(t, f, srv, rc.Hello{ServerURI: "urn:plant:impostor", EndpointURL: srv.URL()})
		if !errors.Is(err, rc.ErrApplicationURIMismatch) {
			t.Fatalf("Build = %v, want ErrApplicationURIMismatch", err)
		}
		if !strings.Contains(err.Error(), "urn:plant:impostor") {
			t.Errorf("error does not name the server: %v", err)
		}
	})

	t.Run("PinnedCertificateChecked", func(t *testing.T) {
		// A pinned certificate skips discovery but not the rules: its
		// ApplicationUri must still match.
		other := generate(t, "urn:plant:other")
		f := newFactory(t, secure(rc.TrustConfig{Pinned: map[string][]byte{rctest.DefaultServerURI: other.Certificate}}))
		if err := buildErr(t, f, srv, srv.Hello()); !errors.Is(err, rc.ErrApplicationURIMismatch) {
			t.Fatalf("Build = %v, want ErrApplicationURIMismatch", err)
		}
	})

	t.Run("PinnedCertificateReplaced", func(t *testing.T) {
		// The server presents another certificate than the pinned one: the
		// secure channel fails, and the next dial learns by discovery which
		// certificate the server has and names it.
		old := generate(t, rctest.DefaultServerURI)
		f := newFactory(t, secure(rc.TrustConfig{Pinned: map[string][]byte{rctest.DefaultServerURI: old.Certificate}}))
		if err := buildErr(t, f, srv, srv.Hello()); !errors.Is(err, rc.ErrHandshake) {
			t.Fatalf("first dial: %v, want ErrHandshake", err)
		}
		err := buildErr(t, f, srv, srv.Hello())
		var ce *rc.CertificateError
		if !errors.As(err, &ce) || !errors.Is(err, rc.ErrUntrustedCertificate) || ce.Thumbprint != rc.Thumbprint(serverKP.Certificate) {
			t.Fatalf("second dial: %v, want ErrUntrustedCertificate naming the server's certificate", err)
		}
		// With the right pin, discovery confirms it and the next dial uses it.
		f = newFactory(t, secure(rc.TrustConfig{Pinned: map[string][]byte{rctest.DefaultServerURI: serverKP.Certificate}}))
		if err := buildErr(t, f, srv, srv.Hello()); !errors.Is(err, rc.ErrHandshake) {
			t.Fatalf("pinned, gopcua's server fails the channel: %v", err)
		}
		if err := buildErr(t, f, srv, srv.Hello()); !errors.Is(err, rc.ErrRedialNeeded) {
			t.Fatalf("pinned, after a failure: %v, want discovery (ErrRedialNeeded)", err)
		}
	})

	t.Run("NoMatchingEndpoint", func(t *testing.T) {
		cfg := secure(rc.TrustConfig{Dir: trustDir(t, serverKP)})
		cfg.SecurityPolicy = rc.SecurityPolicyAes256Sha256RsaPss
		f := newFactory(t, cfg)
		err := buildErr(t, f, srv, srv.Hello())
		if !errors.Is(err, rc.ErrNoMatchingEndpoint) || !strings.Contains(err.Error(), "Basic256Sha256") {
			t.Fatalf("Build = %v, want ErrNoMatchingEndpoint listing the offered policies", err)
		}
	})

	t.Run("UserNameOverNoneNeedsTrustedCertificate", func(t *testing.T) {
		// The server's UserName policy encrypts with Basic256Sha256 even on
		// the None channel: the certificate used must be trusted.
		cfg := rc.ClientConfig{Identity: rc.UserNameIdentity("operator", rc.NewSecret("s3cret"))}
		err := buildErr(t, newFactory(t, cfg), srv, srv.Hello())
		if !errors.Is(err, rc.ErrUntrustedCertificate) {
			t.Fatalf("untrusted: %v, want ErrUntrustedCertificate", err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatal("password in error")
		}
		cfg.Trust = rc.TrustConfig{Pinned: map[string][]byte{rctest.DefaultServerURI: serverKP.Certificate}}
		if err := buildErr(t, newFactory(t, cfg), srv, srv.Hello()); err != nil {
			t.Fatalf("pinned: %v", err)
		}
	})

	t.Run("CertificateIdentityWithoutPolicy", func(t *testing.T) {
		user := generate(t, "urn:user:alice")
		cfg := rc.ClientConfig{Identity: rc.CertificateIdentity(user.Certificate, user.PrivateKey)}
		if err := buildErr(t, newFactory(t, cfg), srv, srv.Hello()); !errors.Is(err, rc.ErrNoUserTokenPolicy) {
			t.Fatalf("Build = %v, want ErrNoUserTokenPolicy", err)
		}
	})
}

func TestBuildContextCancelled(t *testing.T) {
	ln := listen(t)
	s := scripted(t, ln, "opc.tcp://plc.invalid:4840", waitClosed)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var err error
	finishes(t, 10*time.Second, func() {
		_, err = newFactory(t, rc.ClientConfig{}).Build(ctx, s)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build = %v, want context.Canceled", err)
	}
}
