package nodeua

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// These tests need no Node.js: they check what the harness hands the server.

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{
		Port:             70000,
		GeneratedNodes:   -1,
		SecurityPolicies: []string{"Basic128Rsa15"},
		SecurityModes:    []string{"Encrypt"},
		Users:            []User{{Username: "", Role: "admin"}},
		X509Users:        []X509User{{Certificate: []byte("not a cert"), Role: RoleOperator}},
		ReverseConnect:   &ReverseConnect{},
	}
	err := c.validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("validate: %v, want ErrConfig", err)
	}
	for _, want := range []string{"Port 70000", "GeneratedNodes -1", `SecurityPolicies[0] "Basic128Rsa15"`,
		`SecurityModes[0] "Encrypt"`, `Users[0].Role "admin"`, "Users[0].Username empty",
		"X509Users[0].Certificate", "ReverseConnect.ClientURLs empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validate error lacks %q:\n%v", want, err)
		}
	}
	if err := (&Config{}).validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

func TestJSONConfigDefaults(t *testing.T) {
	s := &Server{cfg: Config{PKIDir: "/pki"}, runDir: t.TempDir()}
	sc, err := s.jsonConfig(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"applicationUri":        DefaultApplicationURI,
		"hostname":              DefaultHostname,
		"host":                  "127.0.0.1",
		"namespaceUri":          DefaultNamespaceURI,
		"autoAcceptClientCerts": true,
		"allowAnonymous":        true,
		"anonymousWrite":        true,
		"counterIntervalMs":     10.0,
		"minSampleRateMs":       0.0,
		"pkiDir":                "/pki",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["reverseConnect"]; ok {
		t.Error("reverseConnect present without Config.ReverseConnect")
	}
	if users := got["users"].([]any); len(users) != 2 {
		t.Errorf("users = %v, want DefaultUsers", users)
	}

	s.cfg = Config{
		Users:           []User{},
		CounterInterval: -1,
		ReverseConnect:  &ReverseConnect{ClientURLs: []string{"opc.tcp://127.0.0.1:1"}, ReconnectDelay: 250 * time.Millisecond},
	}
	sc, err = s.jsonConfig(4840)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Users) != 0 || sc.CounterIntervalMS != 0 || sc.Port != 4840 {
		t.Errorf("users %v, counter %v ms, port %d; want none, 0 (off), 4840", sc.Users, sc.CounterIntervalMS, sc.Port)
	}
	rc := sc.ReverseConnect
	if rc == nil || rc.ReconnectDelayMS != 250 || rc.MaxReconnectDelayMS != DefaultMaxReconnectDelay.Milliseconds() ||
		rc.ConnectionTimeoutMS != DefaultConnectionTimeout.Milliseconds() {
		t.Errorf("reverseConnect = %+v", rc)
	}
}
