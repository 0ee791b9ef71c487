package rc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretsNeverPrinted(t *testing.T) {
	const pw = "hunter2-Geheim"
	kp := mustKeyPair(t, "urn:rcbridge:test")
	sec := NewSecret(pw)
	id := UserNameIdentity("operator", sec)
	cfg := ClientConfig{Identity: id, KeyPair: kp}
	keyDigits := kp.PrivateKey.D.String()[:20]

	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		out = append(out, fmt.Sprintf(verb, sec), fmt.Sprintf(verb, id), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		slog.New(h).Info("config", "secret", sec, "identity", id, "keypair", kp, "cfg", cfg)
	}
	out = append(out, logs.String())
	j, err := json.Marshal(struct{ S Secret }{sec})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	for _, s := range out {
		if strings.Contains(s, pw) || strings.Contains(s, keyDigits) {
			t.Fatalf("secret leaked: %s", s)
		}
	}
	if !strings.Contains(fmt.Sprint(id), "operator") {
		t.Errorf("identity should name its user: %v", id)
	}
	if sec.Reveal() != pw {
		t.Error("Reveal lost the value")
	}
	var back Secret
	if err := back.UnmarshalText([]byte("x")); err != nil || back.Reveal() != "x" {
		t.Errorf("UnmarshalText = %v, %q", err, back.Reveal())
	}
}

func TestSecurityText(t *testing.T) {
	for _, p := range []SecurityPolicy{SecurityPolicyNone, SecurityPolicyBasic256Sha256, SecurityPolicyAes128Sha256RsaOaep, SecurityPolicyAes256Sha256RsaPss} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q, r SecurityPolicy
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("%s: round trip = %v, %v", p, q, err)
		}
		if err := r.UnmarshalText([]byte(p.URI())); err != nil || r != p {
			t.Errorf("%s: from URI = %v, %v", p, r, err)
		}
	}
	for _, m := range []SecurityMode{SecurityModeNone, SecurityModeSign, SecurityModeSignAndEncrypt} {
		b, _ := m.MarshalText()
		var q SecurityMode
		if err := q.UnmarshalText(b); err != nil || q != m {
			t.Errorf("%s: round trip = %v, %v", m, q, err)
		}
	}
	for _, s := range []string{"Basic128Rsa15", "basic256sha256", ""} {
		if _, err := ParseSecurityPolicy(s); err == nil {
			t.Errorf("ParseSecurityPolicy(%q) accepted", s)
		}
	}
	if _, err := ParseSecurityMode("Encrypt"); err == nil {
		t.Error("ParseSecurityMode(Encrypt) accepted")
	}
	if _, err := SecurityPolicy(9).MarshalText(); err == nil {
		t.Error("invalid policy marshalled")
	}
}

func TestClientConfigValidate(t *testing.T) {
	if err := (ClientConfig{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	kp := mustKeyPair(t, "urn:rcbridge:client")
	bad := ClientConfig{
		SecurityPolicy:  SecurityPolicyBasic256Sha256,
		SecurityMode:    SecurityModeNone,
		ApplicationURI:  "urn:something:else",
		KeyPair:         kp,
		Identity:        UserNameIdentity("", NewSecret("x")),
		RequestTimeout:  -1,
		ChannelLifetime: 1,
		Trust:           TrustConfig{Dir: "/does/not/exist"},
	}
	err := bad.Validate()
	for _, want := range []string{"SecurityMode Sign or SignAndEncrypt", "ApplicationURI", "empty user name", "RequestTimeout", "ChannelLifetime", "Trust.Dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; missing %q", err, want)
		}
	}
	if _, err := NewFactory(bad); err == nil {
		t.Error("NewFactory accepted an invalid config")
	}
	noTrust := ClientConfig{SecurityPolicy: SecurityPolicyBasic256Sha256, SecurityMode: SecurityModeSign, KeyPair: kp}
	if err := noTrust.Validate(); err == nil || !strings.Contains(err.Error(), "no server could be trusted") {
		t.Errorf("secure without trust: %v", err)
	}
	noKey := ClientConfig{SecurityPolicy: SecurityPolicyBasic256Sha256, SecurityMode: SecurityModeSign, Trust: TrustConfig{Dir: t.TempDir()}}
	if err := noKey.Validate(); err == nil || !strings.Contains(err.Error(), "KeyPair") {
		t.Errorf("secure without key pair: %v", err)
	}
	for _, size := range []int{-1, 1, 8191, 4<<20 + 1} {
		err := ClientConfig{BufferSize: size}.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), fmt.Sprintf("BufferSize %d outside 8192..4194304", size)) {
			t.Errorf("BufferSize %d: Validate() = %v", size, err)
		}
	}
	for _, size := range []int{0, 8192, 32 << 10, 4 << 20} {
		if err := (ClientConfig{BufferSize: size}).Validate(); err != nil {
			t.Errorf("BufferSize %d: Validate() = %v", size, err)
		}
	}
	if f, err := NewFactory(ClientConfig{}); err != nil || f.cfg.BufferSize != DefaultBufferSize {
		t.Errorf("BufferSize default = %d, %v; want %d", f.cfg.BufferSize, err, DefaultBufferSize)
	}
	f, err := NewFactory(ClientConfig{KeyPair: kp})
	if err != nil || f.cfg.ApplicationURI != "urn:rcbridge:client" {
		t.Errorf("ApplicationURI default from certificate = %q, %v", f.cfg.ApplicationURI, err)
	}
}
