//go:build integration

package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// BenchmarkReadNodeUA measures one Read round trip of one Double against
// node-opcua: rc.Client on the server's native reverse connection versus
// gopcua's opcua.Client dialing the same server, in one run.
//
//	go test -tags integration -run '^$' -bench NodeUA -benchmem ./integration
func BenchmarkReadNodeUA(b *testing.B) {
	srv := startReverse(b, nodeua.Config{CounterInterval: -1})
	node := srv.NodeID(nodeua.NodeMotor1Speed)
	reverse := srv.build(b, factory(b, rc.ClientConfig{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	direct, err := opcua.NewClient(srv.DialURL(), opcua.AutoReconnect(false), opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		b.Fatal(err)
	}
	if err := direct.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer direct.Close(context.Background())
	req := &ua.ReadRequest{
		TimestampsToReturn: ua.TimestampsToReturnBoth,
		NodesToRead:        []*ua.ReadValueID{{NodeID: node, AttributeID: ua.AttributeIDValue}},
	}
	readReverse := func() error { _, err := reverse.ReadValues(context.Background(), node); return err }
	readDirect := func() error { _, err := direct.Read(context.Background(), req); return err }
	// Warm both paths up (node's JIT optimises the read path) before timing.
	for range 2000 {
		if err := errors.Join(readReverse(), readDirect()); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		read func() error
	}{{"reverse", readReverse}, {"direct", readDirect}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("paired", func(b *testing.B) { rctest.Paired(b, "reverse", readReverse, "direct", readDirect) })
}

// benchConfigs starts a server and returns it with the client
// configurations the setup benchmarks compare.
func benchConfigs(b *testing.B) (*rcServer, []struct {
	name string
	cfg  rc.ClientConfig
}) {
	kp, err := rc.GenerateKeyPair(rc.CertificateTemplate{ApplicationURI: clientAppURI})
	if err != nil {
		b.Fatal(err)
	}
	srv := startReverse(b, nodeua.Config{CounterInterval: -1})
	pinned := map[string][]byte{srv.ApplicationURI(): srv.CertificateDER()}
	return srv, []struct {
		name string
		cfg  rc.ClientConfig
	}{
		{"None", rc.ClientConfig{}},
		{"Basic256Sha256-SignAndEncrypt", rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt,
			KeyPair: kp, Trust: rc.TrustConfig{Pinned: pinned},
		}},
	}
}

// BenchmarkSessionSetupNodeUA measures Factory.Build against node-opcua:
// from the admitted reverse connection (RHE read) to an active session.
// Waiting for the server's next dial and Close are not timed.
func BenchmarkSessionSetupNodeUA(b *testing.B) {
	srv, configs := benchConfigs(b)
	for _, tc := range configs {
		b.Run(tc.name, func(b *testing.B) {
			f := factory(b, tc.cfg)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s := srv.accept(b)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				b.StartTimer()
				c, err := f.Build(ctx, s)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				_ = c.Close(ctx)
				cancel()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkResumeNodeUA measures Client.Resume against node-opcua: from the
// server's next reverse connection (RHE read) to the session active on it.
// Dropping the old connection and waiting for the re-dial are not timed.
func BenchmarkResumeNodeUA(b *testing.B) {
	srv, configs := benchConfigs(b)
	for _, tc := range configs {
		b.Run(tc.name, func(b *testing.B) {
			c := srv.build(b, factory(b, tc.cfg))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				if _, err := srv.DropConnections(); err != nil {
					b.Fatal(err)
				}
				<-c.Done()
				s := srv.accept(b)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				b.StartTimer()
				outcome, err := c.Resume(ctx, s)
				b.StopTimer()
				cancel()
				if err != nil || outcome != rc.SessionResumed {
					b.Fatalf("Resume = %v, %v", outcome, err)
				}
				b.StartTimer()
			}
		})
	}
}
