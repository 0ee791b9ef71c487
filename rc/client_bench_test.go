package rc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// BenchmarkRead measures one Read round trip of one Double value.
//
//   - reverse: rc.Client on a reverse connection from the rctest server.
//   - direct: gopcua's opcua.Client dialing the same server.
//
// gopcua's server cannot serve an accepted socket, so rctest relays the
// reverse connection; the direct client dials rctest.ListenDirect, which
// crosses the same relay, so both paths carry the same hop and the
// difference is the client stack. Run both in one run:
//
//	go test -run '^$' -bench BenchmarkRead -benchmem ./rc
func BenchmarkRead(b *testing.B) {
	srv := newServer(b, rctest.Options{})
	node := srv.AddVariable("Speed", 1500.0, false)
	directAddr, err := srv.ListenDirect()
	if err != nil {
		b.Fatal(err)
	}
	reverse, _ := build(b, newFactory(b, rc.ClientConfig{}), srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	direct, err := opcua.NewClient("opc.tcp://"+directAddr, opcua.AutoReconnect(false), opcua.SecurityMode(ua.MessageSecurityModeNone))
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
	readReverse := func() (*ua.DataValue, error) {
		dvs, err := reverse.ReadValues(context.Background(), node)
		if err != nil {
			return nil, err
		}
		return dvs[0], nil
	}
	readDirect := func() (*ua.DataValue, error) {
		res, err := direct.Read(context.Background(), req)
		if err != nil {
			return nil, err
		}
		return res.Results[0], nil
	}
	for _, tc := range []struct {
		name string
		read func() (*ua.DataValue, error)
	}{{"reverse", readReverse}, {"direct", readDirect}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dv, err := tc.read()
				if err != nil || dv.Value.Value() != 1500.0 {
					b.Fatalf("read: %v, %v", dv, err)
				}
			}
		})
	}
	b.Run("paired", func(b *testing.B) {
		check := func(dv *ua.DataValue, err error) error {
			if err == nil && dv.Value.Value() != 1500.0 {
				err = fmt.Errorf("read %v", dv.Value)
			}
			return err
		}
		rctest.Paired(b, "reverse", func() error { return check(readReverse()) }, "direct", func() error { return check(readDirect()) })
	})
}

// BenchmarkSessionSetup measures Factory.Build with None security: from the
// admitted session (RHE read) to an active session with the NamespaceArray
// and OperationLimits read. The reverse dial and Close are not timed.
func BenchmarkSessionSetup(b *testing.B) {
	srv := newServer(b, rctest.Options{})
	f := newFactory(b, rc.ClientConfig{})
	ln := listen(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s, relay := reverseConnect(b, srv, ln)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b.StartTimer()
		c, err := f.Build(ctx, s)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close(ctx)
		cancel()
		relay.Close()
		relay.Wait()
		b.StartTimer()
	}
}
