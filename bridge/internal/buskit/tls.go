package buskit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig builds a client TLS configuration from PEM files: caFile adds
// trusted roots (the system pool is used when it is empty), certFile and
// keyFile (both or neither) give the client certificate. serverName
// overrides the name checked in the server certificate. It returns nil,
// nil when every argument is empty and useTLS is false.
func TLSConfig(useTLS bool, caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	if !useTLS && caFile == "" && certFile == "" && keyFile == "" && serverName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	var errs []error
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls ca file %q: %w", caFile, err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("tls ca file %q: no PEM certificate found", caFile))
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls client certificate %q / key %q: %w", certFile, keyFile, err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	case certFile != "" || keyFile != "":
		errs = append(errs, fmt.Errorf("tls client certificate %q and key %q: give both or neither", certFile, keyFile))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}
