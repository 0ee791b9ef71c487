//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"

	"github.com/rcbridge/rcbridge/integration/nodeua"
)

// dialAnonymous connects gopcua's dialing client over None, anonymously.
func dialAnonymous(t *testing.T, srv *nodeua.Server) *opcua.Client {
	t.Helper()
	return dial(t, srv, "None", ua.MessageSecurityModeNone, opcua.AuthAnonymous(),
		opcua.SecurityFromEndpoint(endpoint(t, srv, "None", ua.MessageSecurityModeNone), ua.UserTokenTypeAnonymous))
}

// TestNodeUACounterEveryChange subscribes to the 10 ms Counter with a
// sampling interval of 0 and checks that every value arrives, in order.
func TestNodeUACounterEveryChange(t *testing.T) {
	t.Parallel()
	srv := nodeua.Start(t, nodeua.Config{})
	c := dialAnonymous(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	notes := make(chan *opcua.PublishNotificationData, 64)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 50 * time.Millisecond}, notes)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel(context.Background())
	item := opcua.NewMonitoredItemCreateRequestWithDefaults(srv.NodeID(nodeua.NodeCounter), ua.AttributeIDValue, 1)
	item.RequestedParameters.QueueSize = 1000
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, item)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Results[0]; r.StatusCode != ua.StatusOK || r.RevisedSamplingInterval != 0 {
		t.Fatalf("monitored item: %v, revised sampling interval %v; want Good, 0", r.StatusCode, r.RevisedSamplingInterval)
	}

	var values []uint32
	for len(values) < 150 {
		select {
		case n := <-notes:
			if n.Error != nil {
				t.Fatal(n.Error)
			}
			dc, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			for _, mi := range dc.MonitoredItems {
				values = append(values, mi.Value.Value.Value().(uint32))
			}
		case <-ctx.Done():
			t.Fatalf("only %d values after 30 s", len(values))
		}
	}
	for i := 1; i < len(values); i++ {
		if values[i] != values[i-1]+1 {
			t.Fatalf("value %d after %d: a change was lost or merged (values %v)", values[i], values[i-1], values)
		}
	}
}

// TestNodeUAOperationLimits checks that configured limits are advertised
// and enforced.
func TestNodeUAOperationLimits(t *testing.T) {
	t.Parallel()
	srv := nodeua.Start(t, nodeua.Config{
		GeneratedNodes:  10,
		OperationLimits: nodeua.OperationLimits{MaxNodesPerRead: 5, MaxMonitoredItemsPerCall: 3},
	})
	c := dialAnonymous(t, srv)
	dvs := readValues(t, c,
		ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead),
		ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall))
	if dvs[0].Value.Value() != uint32(5) || dvs[1].Value.Value() != uint32(3) {
		t.Errorf("OperationLimits MaxNodesPerRead %v, MaxMonitoredItemsPerCall %v; want 5, 3", dvs[0].Value.Value(), dvs[1].Value.Value())
	}
	req := &ua.ReadRequest{}
	for i := range 6 {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: srv.NodeID(nodeua.GenNode(i)), AttributeID: ua.AttributeIDValue})
	}
	if _, err := c.Read(context.Background(), req); err != ua.StatusBadTooManyOperations {
		t.Errorf("reading 6 nodes with MaxNodesPerRead 5: %v, want BadTooManyOperations", err)
	}
}

// TestNodeUADropReverseConnection completes the HEL/ACK handshake on a
// reverse socket (which makes it node-opcua's channel and resets its
// backoff), drops the server's sockets with DropConnections and measures
// how soon the server dials again.
func TestNodeUADropReverseConnection(t *testing.T) {
	t.Parallel()
	ln, clientURL := listen(t)
	const delay = 100 * time.Millisecond
	srv := nodeua.Start(t, nodeua.Config{
		Hostname:       "plc.invalid",
		ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{clientURL}, ReconnectDelay: delay},
	})
	conn, h := acceptHello(t, ln, 10*time.Second)
	for round := range 3 {
		ack := *uacp.DefaultClientACK
		uc, err := uacp.NewConn(conn.(*net.TCPConn), &ack)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// The HEL carries the RHE's EndpointUrl with its unresolvable host.
		err = uc.Handshake(ctx, h.EndpointURL)
		cancel()
		if err != nil {
			t.Fatalf("round %d: HEL/ACK over the reverse socket: %v", round, err)
		}
		n, err := srv.DropConnections()
		if err != nil || n != 1 {
			t.Fatalf("round %d: DropConnections = %d, %v; want 1 socket", round, n, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("round %d: read after DropConnections: %v, want EOF or reset", round, err)
		}
		dropped := time.Now()
		uc.Close()
		conn, h = acceptHello(t, ln, 10*time.Second)
		took := time.Since(dropped)
		t.Logf("round %d: re-dial %v after the drop (ReconnectDelay %v)", round, took.Round(time.Millisecond), delay)
		if took < delay*9/10 {
			t.Errorf("round %d: re-dial after %v, before ReconnectDelay %v", round, took, delay)
		}
	}
	conn.Close()
}

// TestNodeUACertificate checks the generated server certificate, with an
// ApplicationUri in it that differs from the server's on purpose.
func TestNodeUACertificate(t *testing.T) {
	t.Parallel()
	srv := nodeua.Start(t, nodeua.Config{Hostname: "plc.invalid", CertApplicationURI: "urn:rcbridge:test:impostor"})
	cert, err := x509.ParseCertificate(srv.CertificateDER())
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:rcbridge:test:impostor" {
		t.Errorf("certificate URIs %v, want [urn:rcbridge:test:impostor]", cert.URIs)
	}
	if srv.ApplicationURI() != nodeua.DefaultApplicationURI {
		t.Errorf("ApplicationURI %q, want %q", srv.ApplicationURI(), nodeua.DefaultApplicationURI)
	}
	if !slices.Contains(cert.DNSNames, "plc.invalid") || !slices.Contains(cert.DNSNames, "localhost") {
		t.Errorf("certificate DNS names %v lack plc.invalid or localhost", cert.DNSNames)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("certificate IP addresses %v, want [127.0.0.1]", cert.IPAddresses)
	}
	pem, err := os.ReadFile(srv.CertFile())
	if err != nil || !strings.Contains(string(pem), "BEGIN CERTIFICATE") {
		t.Errorf("CertFile %s: %v, PEM %t", srv.CertFile(), err, strings.Contains(string(pem), "BEGIN CERTIFICATE"))
	}
	// The endpoint hands out the same certificate.
	ep := endpoint(t, srv, "Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt)
	if !bytes.Equal(ep.ServerCertificate, srv.CertificateDER()) {
		t.Error("endpoint certificate differs from CertificateDER")
	}
	if ep.Server.ApplicationURI != nodeua.DefaultApplicationURI {
		t.Errorf("endpoint ApplicationUri %q", ep.Server.ApplicationURI)
	}
}

// TestNodeUAAnonymousTransfer checks Config.AllowAnonymousTransferOnNone:
// a second anonymous session on a None channel asks to take over the
// first session's subscription.
func TestNodeUAAnonymousTransfer(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%t", allow), func(t *testing.T) {
			t.Parallel()
			srv := nodeua.Start(t, nodeua.Config{AllowAnonymousTransferOnNone: allow})
			a, b := dialAnonymous(t, srv), dialAnonymous(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sub, err := a.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 100 * time.Millisecond}, make(chan *opcua.PublishNotificationData, 16))
			if err != nil {
				t.Fatal(err)
			}
			var res *ua.TransferSubscriptionsResponse
			err = b.Send(ctx, &ua.TransferSubscriptionsRequest{SubscriptionIDs: []uint32{sub.SubscriptionID}}, func(r ua.Response) error {
				res = r.(*ua.TransferSubscriptionsResponse)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := ua.StatusBadUserAccessDenied
			if allow {
				want = ua.StatusOK
			}
			if len(res.Results) != 1 || res.Results[0].StatusCode != want {
				t.Fatalf("TransferSubscriptions results %+v, want %v", res.Results, want)
			}
		})
	}
}

// TestNodeUAAnonymousReadOnly checks Config.AnonymousReadOnly: only
// RoleOperator users may write then.
func TestNodeUAAnonymousReadOnly(t *testing.T) {
	t.Parallel()
	srv := nodeua.Start(t, nodeua.Config{AnonymousReadOnly: true, GeneratedNodes: 1})
	ep := endpoint(t, srv, "None", ua.MessageSecurityModeNone)
	for _, tc := range []struct {
		name string
		opts []opcua.Option
		want ua.StatusCode
	}{
		{"anonymous", []opcua.Option{opcua.AuthAnonymous(), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous)}, ua.StatusBadUserAccessDenied},
		{"reader", []opcua.Option{opcua.AuthUsername(nodeua.ReaderUser, nodeua.ReaderPassword), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName)}, ua.StatusBadUserAccessDenied},
		{"operator", []opcua.Option{opcua.AuthUsername(nodeua.OperatorUser, nodeua.OperatorPassword), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName)}, ua.StatusOK},
	} {
		c := dial(t, srv, "None", ua.MessageSecurityModeNone, tc.opts...)
		for _, node := range []string{nodeua.NodeMotor1Speed, "Types.Double", nodeua.GenNode(0)} {
			v := ua.MustVariant(2.5)
			if node == nodeua.GenNode(0) {
				v = ua.MustVariant(int32(5))
			}
			if st := write(t, c, srv.NodeID(node), v); st != tc.want {
				t.Errorf("%s writes %s: %v, want %v", tc.name, node, st, tc.want)
			}
		}
		// Reading stays allowed for everybody.
		if dv := readValues(t, c, srv.NodeID(nodeua.NodeMotor1Speed))[0]; dv.Status != ua.StatusOK {
			t.Errorf("%s reads Speed: %v", tc.name, dv.Status)
		}
	}
}
