package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"github.com/rcbridge/rcbridge/rc"
)

// Names of the generated client certificate and key under
// client.certificate_dir.
const (
	generatedCertificate = "rcbridge-client.crt.pem"
	generatedKey         = "rcbridge-client.key.pem"
)

// certificatePaths returns where the client certificate and key are: the
// configured files, or the generated ones under certificate_dir.
func certificatePaths(c config.Client) (certFile, keyFile string, generated bool) {
	if c.Certificate != "" {
		return c.Certificate, c.PrivateKey, false
	}
	return filepath.Join(c.CertificateDir, generatedCertificate), filepath.Join(c.CertificateDir, generatedKey), true
}

// clientKeyPair loads the bridge's application instance certificate, or
// creates it on first start when it is to be generated and absent.
func clientKeyPair(c config.Client, log *slog.Logger) (rc.KeyPair, error) {
	certFile, keyFile, generated := certificatePaths(c)
	kp, err := rc.LoadKeyPair(certFile, keyFile)
	if err == nil || !generated || !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return rc.KeyPair{}, fmt.Errorf("client certificate: %w", err)
		}
		return kp, nil
	}
	kp, err = writeClientCertificate(c, certFile, keyFile, nil)
	if err != nil {
		return rc.KeyPair{}, err
	}
	log.Info("generated the client certificate: add it to the trust list of every server that uses security",
		"certificate", certFile, "thumbprint", rc.Thumbprint(kp.Certificate), "application_uri", c.ApplicationURI)
	return kp, nil
}

// writeClientCertificate generates a self-signed client certificate with
// the configured ApplicationUri and writes it and its key (mode 0600). It
// never overwrites files.
func writeClientCertificate(c config.Client, certFile, keyFile string, hosts []string) (rc.KeyPair, error) {
	kp, err := rc.GenerateKeyPair(rc.CertificateTemplate{
		ApplicationURI: c.ApplicationURI,
		CommonName:     c.ApplicationName,
		Hosts:          hosts,
	})
	if err != nil {
		return rc.KeyPair{}, fmt.Errorf("client certificate: %w", err)
	}
	for _, f := range []string{certFile, keyFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return rc.KeyPair{}, fmt.Errorf("client certificate: %w", err)
		}
	}
	if err := kp.WriteFiles(certFile, keyFile); err != nil {
		return rc.KeyPair{}, fmt.Errorf("client certificate: %w", err)
	}
	return kp, nil
}

// clientConfigs returns the rc.ClientConfig of every configured server, by
// ServerUri (for rcsource, which makes one rc.Factory per server), reading
// pinned certificates, user certificates and passwords.
// Every problem is reported, each naming its server.
func clientConfigs(cfg *config.Config, kp rc.KeyPair, lookupEnv func(string) (string, bool), log *slog.Logger) (map[string]rc.ClientConfig, error) {
	out := make(map[string]rc.ClientConfig, len(cfg.Servers))
	var errs []error
	for i, s := range cfg.Servers {
		cc, err := clientConfig(cfg.Client, s, kp, lookupEnv, log)
		if err == nil {
			err = cc.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("servers[%d] (%s): %w", i, s.URI, err))
			continue
		}
		out[s.URI] = cc
	}
	return out, errors.Join(errs...)
}

func clientConfig(c config.Client, s config.Server, kp rc.KeyPair, lookupEnv func(string) (string, bool), log *slog.Logger) (rc.ClientConfig, error) {
	policy, err := rc.ParseSecurityPolicy(s.SecurityPolicy.String())
	if err != nil {
		return rc.ClientConfig{}, err
	}
	mode, err := rc.ParseSecurityMode(s.SecurityMode.String())
	if err != nil {
		return rc.ClientConfig{}, err
	}
	trust := rc.TrustConfig{Dir: s.TrustDir}
	if trust.Dir == "" {
		trust.Dir = c.TrustDir
	}
	if trust.Dir != "" {
		// Created empty on first start, for the administrator to fill.
		if err := os.MkdirAll(trust.Dir, 0o700); err != nil {
			return rc.ClientConfig{}, fmt.Errorf("trust_dir: %w", err)
		}
	}
	if s.ServerCertificate != "" {
		data, err := os.ReadFile(s.ServerCertificate)
		if err != nil {
			return rc.ClientConfig{}, fmt.Errorf("server_certificate: %w", err)
		}
		der, err := rc.ParseCertificate(data)
		if err != nil {
			return rc.ClientConfig{}, fmt.Errorf("server_certificate %q: %w", s.ServerCertificate, err)
		}
		trust.Pinned = map[string][]byte{s.URI: der}
	}
	id, err := identity(s.Identity, lookupEnv)
	if err != nil {
		return rc.ClientConfig{}, fmt.Errorf("identity: %w", err)
	}
	return rc.ClientConfig{
		SecurityPolicy:    policy,
		SecurityMode:      mode,
		KeyPair:           kp,
		ApplicationURI:    c.ApplicationURI,
		ApplicationName:   c.ApplicationName,
		Trust:             trust,
		Identity:          id,
		RequestTimeout:    c.RequestTimeout.D(),
		SessionTimeout:    c.SessionTimeout.D(),
		NotificationQueue: s.NotificationQueueSize,
		BufferSize:        c.BufferSize,
		Logger:            log,
	}, nil
}

func identity(id config.Identity, lookupEnv func(string) (string, bool)) (rc.Identity, error) {
	switch id.Kind {
	case config.IdentityUsername:
		pw, err := id.PasswordRef().Load(lookupEnv)
		if err != nil {
			return rc.Identity{}, err
		}
		return rc.UserNameIdentity(id.Username, rc.NewSecret(pw.Value())), nil
	case config.IdentityCertificate:
		kp, err := rc.LoadKeyPair(id.Certificate, id.PrivateKey)
		if err != nil {
			return rc.Identity{}, err
		}
		return rc.CertificateIdentity(kp.Certificate, kp.PrivateKey), nil
	}
	return rc.AnonymousIdentity(), nil
}
