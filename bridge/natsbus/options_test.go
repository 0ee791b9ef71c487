package natsbus

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

func TestOptionsValidate(t *testing.T) {
	good := Options{URLs: []string{"nats://127.0.0.1:4222"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("minimal options: %v", err)
	}
	tests := []struct {
		name string
		o    Options
		want []string // every fragment must appear
	}{
		{"no urls", Options{}, []string{"urls: at least one"}},
		{"bad scheme", Options{URLs: []string{"http://h:1"}}, []string{`scheme "http"`}},
		{"two auth methods", Options{URLs: good.URLs, User: "u", Token: "t"}, []string{"only one of"}},
		{"password alone", Options{URLs: good.URLs, Password: "p"}, []string{"password without user"}},
		{"half client cert", Options{URLs: good.URLs, TLSCertFile: "c.pem"}, []string{`tls_cert_file "c.pem"`}},
		{"negative", Options{URLs: good.URLs, FlushTimeout: -time.Second, MaxInFlight: -1}, []string{"flush_timeout -1s", "max_in_flight -1"}},
		{"self route", Options{URLs: good.URLs, Self: &bridge.Presence{Route: "a.*"}}, []string{"self.route"}},
		{"jetstream", Options{URLs: good.URLs, JetStream: &JetStreamOptions{Stream: "a.b", Subjects: []string{"x..y"}, PresenceBucket: "b b"}},
			[]string{`jetstream.stream "a.b"`, "jetstream.subjects[0]", `presence_bucket "b b"`}},
		{"everything at once", Options{URLs: []string{"ftp://x:1"}, User: "u", NKeySeedFile: "n", TLSKeyFile: "k"},
			[]string{`scheme "ftp"`, "only one of", `tls_key_file "k"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Validate: %v, want ErrInvalidOptions", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestOptionsLogValueHidesSecrets(t *testing.T) {
	o := Options{URLs: []string{"nats://alice:hunter2@127.0.0.1:4222"}, User: "alice", Password: "s3cret-pw", Token: "s3cret-token"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("options", "nats", o)
	out := buf.String()
	for _, secret := range []string{"hunter2", "s3cret-pw", "s3cret-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("log output %q contains secret %q", out, secret)
		}
	}
	if !strings.Contains(out, "alice") {
		t.Errorf("log output %q lacks the user name", out)
	}
}

func TestSubjects(t *testing.T) {
	for _, s := range []string{"a", "a.b.c", "rcbridge.line-1.temp_C"} {
		if err := validSubject(s); err != nil {
			t.Errorf("validSubject(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", ".a", "a.", "a..b", "a.*", "a.>", "a b", "a.b*", "a\tb", "a\x00"} {
		if err := validSubject(s); err == nil {
			t.Errorf("validSubject(%q) accepted", s)
		}
	}
	for _, s := range []string{"a.>", "a.*.c", ">", "*"} {
		if err := validFilter(s); err != nil {
			t.Errorf("validFilter(%q): %v", s, err)
		}
	}
	for _, s := range []string{"a.>.b", "a.b*", "a..b"} {
		if err := validFilter(s); err == nil {
			t.Errorf("validFilter(%q) accepted", s)
		}
	}
	matches := []struct {
		filter, subject string
		want            bool
	}{
		{"a.>", "a.b", true}, {"a.>", "a.b.c", true}, {"a.>", "a", false},
		{"a.*", "a.b", true}, {"a.*", "a.b.c", false}, {"a.*.c", "a.b.c", true},
		{"a.b", "a.b", true}, {"a.b", "a.bc", false}, {"a.b.c", "a.b", false}, {">", "x", true},
	}
	for _, m := range matches {
		var c captureCache
		c.set([]string{"x.y", m.filter, "x.*.z"})
		if got := c.captures(m.subject); got != m.want {
			t.Errorf("captures(%q) with filter %q = %v, want %v", m.subject, m.filter, got, m.want)
		}
	}
	// A stream of 1,000 servers: one wildcard filter, 1,000 literals.
	var c captureCache
	if c.captures("a.b") || c.overlapping("a.b") != "" {
		t.Error("a stream without filters captures")
	}
	filters := []string{"rcb.*.*"}
	for i := range 1000 {
		filters = append(filters, fmt.Sprintf("rcb.status.plc%04d.events", i))
	}
	c.set(filters)
	for subject, want := range map[string]bool{"rcb.plc0001.tag001": true, "rcb.status.plc0999.events": true,
		"rcb.status.plc1000.events": false, "rcb.plc0001.tag001.set": false} {
		if got := c.captures(subject); got != want {
			t.Errorf("captures(%q) = %v, want %v", subject, got, want)
		}
	}
	for route, want := range map[string]string{"rcb.*.*.set": "", "rcb.status.*.events": "rcb.status.plc0000.events",
		"rcb.status.plc0007.events": "rcb.status.plc0007.events", "rcb.a.b": "rcb.*.*"} {
		if got := c.overlapping(route); got != want {
			t.Errorf("overlapping(%q) = %q, want %q", route, got, want)
		}
	}
	for k, want := range map[string]bool{"line1": true, "a/b=c.d-e_f": true, "": false, ".a": false, "a b": false, "a*": false} {
		if got := validKVKey(k); got != want {
			t.Errorf("validKVKey(%q) = %v, want %v", k, got, want)
		}
	}
}
