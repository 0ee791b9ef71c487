package natsbus

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/testpki"
)

// TestAuthentication connects with every supported credential against a
// server that requires it, and publishes one confirmed batch.
func TestAuthentication(t *testing.T) {
	dir := t.TempDir()
	userKP, _ := nkeys.CreateUser()
	userPub, _ := userKP.PublicKey()
	userSeed, _ := userKP.Seed()
	seedFile := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(seedFile, userSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	pki := testpki.New(t)

	tests := []struct {
		name string
		srv  func(*server.Options)
		opts Options
	}{
		{"user and password", func(o *server.Options) { o.Username, o.Password = "bridge", "pw-1" },
			Options{User: "bridge", Password: "pw-1"}},
		{"token", func(o *server.Options) { o.Authorization = "tok-1" }, Options{Token: "tok-1"}},
		{"nkey seed file", func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: userPub}} }, Options{NKeySeedFile: seedFile}},
		{"creds file", operatorMode(t, dir), Options{CredsFile: filepath.Join(dir, "user.creds")}},
		{"tls with client certificate", func(o *server.Options) {
			o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = pki.ServerConfig(t), true, true, 5
		}, Options{TLSCAFile: pki.CAFile, TLSCertFile: pki.ClientCertFile, TLSKeyFile: pki.ClientKeyFile}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startBrokerWith(t, false, tc.srv)
			o := tc.opts
			o.URLs = []string{b.url()}
			bus := newBus(t, o)
			if err := publishWait(t, bus, bridge.Message{Route: "auth.ok", Payload: []byte("1")}); err != nil {
				t.Errorf("publish: %v", err)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		b := startBrokerWith(t, false, func(o *server.Options) { o.Username, o.Password = "bridge", "pw-1" })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := New(ctx, Options{URLs: []string{b.url()}, User: "bridge", Password: "wrong-pw", Logger: testLogger(t)})
		if err == nil {
			t.Fatal("New with a wrong password succeeded")
		}
		t.Logf("error: %v", err)
		if !strings.Contains(err.Error(), "uthorization") || strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("error %q should name the authorization failure and not the password", err)
		}
	})
	t.Run("tls without client certificate", func(t *testing.T) {
		b := startBrokerWith(t, false, func(o *server.Options) {
			o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = pki.ServerConfig(t), true, true, 5
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := New(ctx, Options{URLs: []string{b.url()}, TLSCAFile: pki.CAFile, Logger: testLogger(t)}); err == nil {
			t.Fatal("New without the required client certificate succeeded")
		}
	})
}

// operatorMode configures a server with an operator, an account and a user
// whose credentials file it writes to dir/user.creds.
func operatorMode(t *testing.T, dir string) func(*server.Options) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	opKP, _ := nkeys.CreateOperator()
	opPub, _ := opKP.PublicKey()
	opClaims := jwt.NewOperatorClaims(opPub)
	opJWT, err := opClaims.Encode(opKP)
	must(err)
	opClaims, err = jwt.DecodeOperatorClaims(opJWT)
	must(err)

	accKP, _ := nkeys.CreateAccount()
	accPub, _ := accKP.PublicKey()
	accJWT, err := jwt.NewAccountClaims(accPub).Encode(opKP)
	must(err)

	userKP, _ := nkeys.CreateUser()
	userPub, _ := userKP.PublicKey()
	uc := jwt.NewUserClaims(userPub)
	uc.IssuerAccount = accPub
	userJWT, err := uc.Encode(accKP)
	must(err)
	seed, _ := userKP.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)
	must(os.WriteFile(filepath.Join(dir, "user.creds"), creds, 0o600))

	return func(o *server.Options) {
		resolver := &server.MemAccResolver{}
		must(resolver.Store(accPub, accJWT))
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		o.AccountResolver = resolver
		o.NoSystemAccount = true
	}
}
