package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"github.com/rcbridge/rcbridge/rc"
)

// hostList collects repeated -host flags.
type hostList []string

func (h *hostList) String() string     { return fmt.Sprint(*h) }
func (h *hostList) Set(s string) error { *h = append(*h, s); return nil }

// genCert implements "rcbridge gen-cert": a self-signed application
// instance certificate for the bridge with the configured ApplicationUri,
// written where the daemon looks for it. Existing files are never
// overwritten.
func genCert(args []string, e env) int {
	fs := flag.NewFlagSet("rcbridge gen-cert", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configFile := fs.String("config", "", "configuration `file` to take application_uri, application_name and the certificate paths from (default $RCBRIDGE_CONFIG, else rcbridge.toml if it exists, else the defaults)")
	certFile := fs.String("cert", "", "certificate `file` to write (default: client.certificate, else <client.certificate_dir>/"+generatedCertificate+")")
	keyFile := fs.String("key", "", "private key `file` to write (default: client.private_key, else <client.certificate_dir>/"+generatedKey+")")
	appURI := fs.String("application-uri", "", "ApplicationUri for the certificate's SubjectAltName (default: client.application_uri)")
	var hosts hostList
	fs.Var(&hosts, "host", "DNS name or IP address to add to the SubjectAltName (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: rcbridge gen-cert [flags]\n\nCreates the bridge's self-signed OPC UA client certificate and key.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "rcbridge gen-cert: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	c, ok := genCertConfig(*configFile, e)
	if !ok {
		return exitFailure
	}
	if *appURI != "" {
		c.ApplicationURI = *appURI
	}
	cf, kf, _ := certificatePaths(c)
	if *certFile != "" {
		cf = *certFile
	}
	if *keyFile != "" {
		kf = *keyFile
	}
	if (*certFile == "") != (*keyFile == "") {
		fmt.Fprintln(e.stderr, "rcbridge gen-cert: -cert and -key go together")
		return exitUsage
	}
	kp, err := writeClientCertificate(c, cf, kf, hosts)
	if err != nil {
		fmt.Fprintln(e.stderr, "rcbridge gen-cert:", err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, `certificate:     %s
private key:     %s (mode 0600)
ApplicationUri:  %s
thumbprint:      %s

Next: add the certificate to the trusted list of every OPC UA server that
uses security, and point client.certificate / client.private_key at these
files if they are not where the configuration already expects them.
`, cf, kf, c.ApplicationURI, rc.Thumbprint(kp.Certificate))
	return exitOK
}

// genCertConfig returns the [client] section gen-cert works from: from the
// named file, else from the default file if it exists, else the defaults.
func genCertConfig(file string, e env) (config.Client, bool) {
	if file == "" {
		file = defaultConfigFile(e)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return config.Default().Client, true
		}
	}
	cfg, ok := loadConfig(file, e)
	if !ok {
		return config.Client{}, false
	}
	return cfg.Client, true
}
