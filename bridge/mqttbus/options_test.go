package mqttbus

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
)

func TestOptionsValidate(t *testing.T) {
	good := Options{Brokers: []string{"tcp://127.0.0.1:1883"}, ClientID: "rcbridge-1"}
	if err := good.Validate(); err != nil {
		t.Fatalf("minimal options: %v", err)
	}
	q3 := bridge.QoS(3)
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"nothing", Options{}, []string{"brokers: at least one", "client_id: required"}},
		{"bad scheme", Options{Brokers: []string{"http://h:1"}, ClientID: "x"}, []string{`scheme "http"`}},
		{"password alone", Options{Brokers: good.Brokers, ClientID: "x", Password: "p"}, []string{"password without username"}},
		{"half client cert", Options{Brokers: good.Brokers, ClientID: "x", TLSKeyFile: "k.pem"}, []string{`tls_key_file "k.pem"`}},
		{"too many in flight", Options{Brokers: good.Brokers, ClientID: "x", MaxInFlight: 70000}, []string{"max_in_flight 70000"}},
		{"negative", Options{Brokers: good.Brokers, ClientID: "x", KeepAlive: -time.Second}, []string{"keep_alive -1s"}},
		{"command qos", Options{Brokers: good.Brokers, ClientID: "x", CommandQoS: &q3}, []string{"command_qos 3"}},
		{"self topic", Options{Brokers: good.Brokers, ClientID: "x", Self: &bridge.Presence{Route: "a/#"}}, []string{"self.route"}},
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
	o := Options{Brokers: []string{"tcp://bob:hunter2@127.0.0.1:1883"}, ClientID: "c", Username: "bob", Password: "s3cret-pw"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("options", "mqtt", o)
	for _, secret := range []string{"hunter2", "s3cret-pw"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log output %q contains secret %q", buf.String(), secret)
		}
	}
}

func TestTopics(t *testing.T) {
	for _, s := range []string{"a", "a/b/c", "plant/line 1/température", "/leading"} {
		if err := validTopic(s); err != nil {
			t.Errorf("validTopic(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "a/+/b", "a/#", "a\x00b", "$SYS/x", "\xff"} {
		if err := validTopic(s); err == nil {
			t.Errorf("validTopic(%q) accepted", s)
		}
	}
}
