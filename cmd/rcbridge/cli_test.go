package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/rc"
)

// TestCheckConfigBinary runs the real binary: the shipped configurations
// pass, a broken one lists every problem and exits 1.
func TestCheckConfigBinary(t *testing.T) {
	bin := binaries.path(t, "./cmd/rcbridge")
	root := repoRoot(t)
	for _, f := range []string{"config.example.toml", "config.demo.toml"} {
		out, err := exec.Command(bin, "-check-config", filepath.Join(root, f)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": OK (") {
			t.Errorf("-check-config %s: %v\n%s", f, err, out)
		}
	}

	broken := writeFile(t, t.TempDir(), "broken.toml", `
colour = "blue"
[listener]
address = "nowhere"
max_pending = 0
[[servers]]
uri = "urn:plant:line1"
security_policy = "Basic128Rsa15"
[bus]
kind = "carrier-pigeon"
[[map]]
servers = "urn:plant:line1"
node = "ns=2;x=7"
`)
	cmd := exec.Command(bin, "-check-config", broken)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
		t.Fatalf("broken config: %v, want exit code %d", err, exitFailure)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
	want := []string{`colour`, `listener.address "nowhere"`, `listener.max_pending "0"`,
		`servers[0].security_policy "Basic128Rsa15"`, `bus.kind "carrier-pigeon"`, `map[0].node "ns=2;x=7"`}
	got := stderr.String()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("stderr lacks %q:\n%s", w, got)
		}
	}
	ls := lines(got)
	if !strings.HasPrefix(ls[0], "rcbridge: "+broken+": ") || !strings.HasSuffix(ls[0], "problems:") || len(ls) < len(want)+1 {
		t.Errorf("stderr not one problem per line under a header:\n%s", got)
	}

	// A missing file is one problem, not a crash.
	out, err := exec.Command(bin, "-check-config", filepath.Join(t.TempDir(), "absent.toml")).CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure || !strings.Contains(string(out), "absent.toml") {
		t.Errorf("absent file: %v\n%s", err, out)
	}
}

func TestCLIUsage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout+stderr
	}{
		{[]string{"-version"}, exitOK, "rcbridge "},
		{[]string{"-h"}, exitOK, "rcbridge -check-config FILE"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"-no-such-flag"}, exitUsage, "no-such-flag"},
		{[]string{"-shutdown-timeout", "0s"}, exitUsage, "-shutdown-timeout 0s"},
		{[]string{"-config", filepath.Join(t.TempDir(), "absent.toml")}, exitFailure, "absent.toml"},
		{[]string{"gen-cert", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"tail", "a", "b"}, exitUsage, "at most one"},
		{[]string{"request", "only-a-route"}, exitUsage, "Usage: rcbridge request"},
		{[]string{"request", "r", "{not json"}, exitUsage, "is not JSON"},
	} {
		code, stdout, stderr := runCLI(t, ctx, nil, tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
			t.Errorf("%q: exit %d, output %q; want exit %d and %q", tc.args, code, stdout+stderr, tc.code, tc.out)
		}
	}
}

func TestGenCert(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", `
[client]
application_uri = "urn:example:bridge"
application_name = "bridge-7"
certificate_dir = "`+filepath.Join(dir, "pki")+`"
`)
	code, stdout, stderr := runCLI(t, context.Background(), []string{"RCBRIDGE_CONFIG=" + cfg}, "gen-cert", "-host", "bridge.example", "-host", "127.0.0.1")
	if code != exitOK {
		t.Fatalf("gen-cert: exit %d\n%s", code, stderr)
	}
	certFile, keyFile := filepath.Join(dir, "pki", generatedCertificate), filepath.Join(dir, "pki", generatedKey)
	kp, err := rc.LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(kp.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:example:bridge" || cert.Subject.CommonName != "bridge-7" ||
		len(cert.DNSNames) != 1 || len(cert.IPAddresses) != 1 {
		t.Errorf("certificate: URIs %v, CN %q, DNS %v, IPs %v", cert.URIs, cert.Subject.CommonName, cert.DNSNames, cert.IPAddresses)
	}
	if !strings.Contains(stdout, rc.Thumbprint(kp.Certificate)) || !strings.Contains(stdout, certFile) {
		t.Errorf("output lacks the thumbprint or path:\n%s", stdout)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v", st.Mode(), err)
	}
	// Never overwrite.
	before, _ := os.ReadFile(certFile)
	if code, _, stderr := runCLI(t, context.Background(), []string{"RCBRIDGE_CONFIG=" + cfg}, "gen-cert"); code != exitFailure || !strings.Contains(stderr, "exists") {
		t.Errorf("second gen-cert: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile(certFile); string(after) != string(before) {
		t.Error("the certificate was overwritten")
	}

	// Explicit paths and URI, no configuration file at all.
	c2, k2 := filepath.Join(dir, "x.pem"), filepath.Join(dir, "x.key")
	code, _, stderr = runCLI(t, context.Background(), []string{"RCBRIDGE_CONFIG=" + filepath.Join(dir, "absent.toml")},
		"gen-cert", "-cert", c2, "-key", k2, "-application-uri", "urn:other")
	if code != exitOK {
		t.Fatalf("gen-cert with paths: exit %d, %s", code, stderr)
	}
	data, _ := os.ReadFile(c2)
	if b, _ := pem.Decode(data); b == nil || b.Type != "CERTIFICATE" {
		t.Errorf("%s is not a PEM certificate", c2)
	}
	if code, _, _ := runCLI(t, context.Background(), nil, "gen-cert", "-cert", c2); code != exitUsage {
		t.Errorf("-cert without -key: exit %d", code)
	}
}

func TestFormatMessage(t *testing.T) {
	at := time.Date(2025, 1, 2, 15, 4, 5, 678_000_000, time.Local)
	data := []byte(`{"server":"urn:a","name":"t","value": 24.5,"type":"Double","status":{"code":0,"name":"Good"},"sourceTimestamp":null}`)
	for _, tc := range []struct {
		m    busMessage
		f    format
		want string
	}{
		{busMessage{Route: "p.a.t", Payload: data}, format{}, "15:04:05.678 p.a.t 24.5 Double Good\n"},
		{busMessage{Route: "p.a.t", Payload: data}, format{full: true}, `15:04:05.678 p.a.t {"server":"urn:a","name":"t","value":24.5,"type":"Double","status":{"code":0,"name":"Good"},"sourceTimestamp":null}` + "\n"},
		{busMessage{Route: "p.a.t", Payload: data}, format{raw: true}, "15:04:05.678 p.a.t " + string(data) + "\n"},
		{busMessage{Route: "p/a/arr", Payload: []byte(`{"value":[1, 2],"type":"Int32","status":{"code":2151415808,"name":"BadOutOfRange"}}`)}, format{}, "15:04:05.678 p/a/arr [1,2] Int32 BadOutOfRange\n"},
		{busMessage{Route: "p/status/a", Payload: []byte(`{"server":"urn:a","state":"online","since":"2025-01-02T14:04:05Z"}`), Retained: true}, format{}, "15:04:05.678 p/status/a (retained) online since 2025-01-02T14:04:05Z\n"},
		{busMessage{Route: "p.x", Payload: []byte(`{"id": "c-1", "ok": true}`)}, format{}, `15:04:05.678 p.x {"id":"c-1","ok":true}` + "\n"},
		{busMessage{Route: "p.x", Payload: []byte("plain text")}, format{}, "15:04:05.678 p.x plain text\n"},
		{busMessage{Route: "p.x", Payload: []byte{0xff}}, format{}, "15:04:05.678 p.x \"\\xff\"\n"},
	} {
		if got := formatMessage(at, tc.m, tc.f); got != tc.want {
			t.Errorf("formatMessage(%s, %+v) =\n%q, want\n%q", tc.m.Payload, tc.f, got, tc.want)
		}
	}
}
