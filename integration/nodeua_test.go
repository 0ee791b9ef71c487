//go:build integration

package integration

// Tests of the node-opcua test server itself (package nodeua), independent
// of rcbridge's client: the reverse-connect side is checked with a plain TCP
// listener and rc.ReadHello, the address space with gopcua's dialing client.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/rc"
)

// listen opens a reverse-connect listener on a free loopback port.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, "opc.tcp://" + ln.Addr().String()
}

// acceptHello accepts one socket and reads its ReverseHello.
func acceptHello(t *testing.T, ln net.Listener, timeout time.Duration) (net.Conn, rc.Hello) {
	t.Helper()
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("no reverse connection within %v: %v", timeout, err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	h, err := rc.ReadHello(conn, 0)
	if err != nil {
		conn.Close()
		t.Fatalf("ReadHello: %v", err)
	}
	return conn, h
}

// TestNodeUAReverseHello points the server at two plain listeners and reads
// the RHE each receives.
func TestNodeUAReverseHello(t *testing.T) {
	t.Parallel()
	ln1, clientURL1 := listen(t)
	ln2, clientURL2 := listen(t)
	begin := time.Now()
	srv := nodeua.Start(t, nodeua.Config{
		ApplicationURI: "urn:rcbridge:test:rhe",
		Hostname:       "plc.invalid",
		ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{clientURL1, clientURL2}},
	})
	t.Logf("server ready in %v (server-side %v)", time.Since(begin), srv.StartupTime())

	want := fmt.Sprintf("opc.tcp://plc.invalid:%d", srv.Port())
	if srv.EndpointURL() != want {
		t.Errorf("harness EndpointURL = %q, want %q", srv.EndpointURL(), want)
	}
	for _, ln := range []net.Listener{ln1, ln2} {
		conn, h := acceptHello(t, ln, 10*time.Second)
		defer conn.Close()
		if h.ServerURI != "urn:rcbridge:test:rhe" {
			t.Errorf("%v: ServerUri = %q, want %q", ln.Addr(), h.ServerURI, "urn:rcbridge:test:rhe")
		}
		if h.EndpointURL != want {
			t.Errorf("%v: EndpointUrl = %q, want %q", ln.Addr(), h.EndpointURL, want)
		}
		// The server sends nothing after the RHE until it gets a HEL.
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		if n, err := conn.Read(b[:]); n != 0 || !isTimeout(err) {
			t.Errorf("%v: after the RHE: read %d bytes, err %v; want a timeout", ln.Addr(), n, err)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestNodeUARedialBackoff rejects every RHE with an ERR frame and measures
// when the server dials again. Observed with node-opcua 2.186.4: it answers
// our ERR with an ERR of its own (BadCommunicationError), closes its socket
// about 1 s later, and re-dials ReconnectDelay after that close, doubling
// the delay on every rejection up to MaxReconnectDelay.
func TestNodeUARedialBackoff(t *testing.T) {
	t.Parallel()
	ln, clientURL := listen(t)
	const delay = 200 * time.Millisecond
	srv := nodeua.Start(t, nodeua.Config{
		ApplicationURI: "urn:rcbridge:test:unknown",
		ReverseConnect: &nodeua.ReverseConnect{
			ClientURLs:        []string{clientURL},
			ReconnectDelay:    delay,
			MaxReconnectDelay: 8 * delay,
		},
	})
	var arrivals, closes []time.Time
	for range 5 {
		conn, h := acceptHello(t, ln, 10*time.Second)
		arrivals = append(arrivals, time.Now())
		if h.ServerURI != srv.ApplicationURI() {
			t.Errorf("ServerUri = %q", h.ServerURI)
		}
		if err := rc.WriteErrorFrame(conn, ua.StatusBadTCPEndpointURLInvalid, "unknown server"); err != nil {
			t.Fatal(err)
		}
		// Wait for the server to close its side; it may send an ERR first.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				if isTimeout(err) {
					t.Fatalf("server kept the socket open 5 s after our ERR (sent %q)", got)
				}
				break
			}
		}
		closes = append(closes, time.Now())
		if len(got) > 0 && !bytes.HasPrefix(got, []byte("ERRF")) {
			t.Errorf("server answered our ERR with %q", got)
		}
		conn.Close()
	}
	var gaps, redials []time.Duration
	for i := 1; i < len(arrivals); i++ {
		gaps = append(gaps, arrivals[i].Sub(arrivals[i-1]).Round(time.Millisecond))
		redials = append(redials, arrivals[i].Sub(closes[i-1]).Round(time.Millisecond))
	}
	t.Logf("RHE to RHE: %v; server close to next RHE: %v (ReconnectDelay %v, doubling, cap %v)",
		gaps, redials, delay, 8*delay)
	// Lower bounds only: a loaded machine makes intervals longer, never
	// shorter than the server's timer.
	wantMin := []time.Duration{delay, 2 * delay, 4 * delay, 8 * delay}
	for i, d := range redials {
		if d < wantMin[i]*9/10 {
			t.Errorf("re-dial %d came %v after the close, want ≥ %v", i+1, d, wantMin[i])
		}
	}
}

// dial connects gopcua's ordinary (dialing) client to the server.
func dial(t *testing.T, srv *nodeua.Server, policy string, mode ua.MessageSecurityMode, opts ...opcua.Option) *opcua.Client {
	t.Helper()
	ep := endpoint(t, srv, policy, mode)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := opcua.NewClient(srv.DialURL(), append([]opcua.Option{
		opcua.SecurityPolicy(ep.SecurityPolicyURI),
		opcua.SecurityMode(mode),
		opcua.AutoReconnect(false),
		opcua.RequestTimeout(10 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect %s/%v: %v", policy, mode, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// endpoint fetches the endpoint description for policy and mode.
func endpoint(t *testing.T, srv *nodeua.Server, policy string, mode ua.MessageSecurityMode) *ua.EndpointDescription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, srv.DialURL())
	if err != nil {
		t.Fatalf("GetEndpoints: %v", err)
	}
	ep, err := opcua.SelectEndpoint(eps, "http://opcfoundation.org/UA/SecurityPolicy#"+policy, mode)
	if err != nil {
		t.Fatalf("SelectEndpoint %s/%v: %v", policy, mode, err)
	}
	return ep
}

func encoded(t *testing.T, v *ua.Variant) []byte {
	t.Helper()
	b, err := v.Encode()
	if err != nil {
		t.Fatalf("encoding %v: %v", v.Value(), err)
	}
	return b
}

func readValues(t *testing.T, c *opcua.Client, ids ...*ua.NodeID) []*ua.DataValue {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, id := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: id, AttributeID: ua.AttributeIDValue})
	}
	res, err := c.Read(context.Background(), req)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(res.Results) != len(ids) {
		t.Fatalf("Read: %d results for %d nodes", len(res.Results), len(ids))
	}
	return res.Results
}

func write(t *testing.T, c *opcua.Client, id *ua.NodeID, v *ua.Variant) ua.StatusCode {
	t.Helper()
	res, err := c.Write(context.Background(), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: id, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
	}}})
	if err != nil {
		t.Fatalf("Write %v: %v", id, err)
	}
	return res.Results[0]
}

func TestNodeUAAddressSpace(t *testing.T) {
	t.Parallel()
	srv := nodeua.Start(t, nodeua.Config{Hostname: "plc.invalid", GeneratedNodes: 3})
	c := dial(t, srv, "None", ua.MessageSecurityModeNone, opcua.AuthAnonymous(),
		opcua.SecurityFromEndpoint(endpoint(t, srv, "None", ua.MessageSecurityModeNone), ua.UserTokenTypeAnonymous))
	ctx := context.Background()

	ns, err := c.NamespaceArray(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(srv.NamespaceIndex()) >= len(ns) || ns[srv.NamespaceIndex()] != nodeua.DefaultNamespaceURI {
		t.Fatalf("NamespaceArray %q: index %d is not %q", ns, srv.NamespaceIndex(), nodeua.DefaultNamespaceURI)
	}

	t.Run("builtin types", func(t *testing.T) {
		vars := nodeua.TypeVariables(srv.NamespaceIndex())
		var ids []*ua.NodeID
		for _, v := range vars {
			ids = append(ids, srv.NodeID(v.Name))
		}
		for i, dv := range readValues(t, c, ids...) {
			want := vars[i]
			if dv.Status != ua.StatusOK {
				t.Errorf("%s: status %v", want.Name, dv.Status)
				continue
			}
			if dv.Value.Type() != want.DataType {
				t.Errorf("%s: type %v, want %v", want.Name, dv.Value.Type(), want.DataType)
			}
			if got, exp := encoded(t, dv.Value), encoded(t, want.Value); !bytes.Equal(got, exp) {
				t.Errorf("%s: value %v (% x), want %v (% x)", want.Name, dv.Value.Value(), got, want.Value.Value(), exp)
			}
			// The control channel reports the same value.
			inside, err := srv.Read(want.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(encoded(t, inside), encoded(t, want.Value)) {
				t.Errorf("%s: control channel reads %v", want.Name, inside.Value())
			}
		}
	})

	t.Run("writes", func(t *testing.T) {
		speed := srv.NodeID(nodeua.NodeMotor1Speed)
		if st := write(t, c, speed, ua.MustVariant(1234.5)); st != ua.StatusOK {
			t.Fatalf("write Speed: %v", st)
		}
		if v, err := srv.Read(nodeua.NodeMotor1Speed); err != nil || v.Value() != 1234.5 {
			t.Errorf("server has Speed = %v (%v), want 1234.5", v, err)
		}
		for _, tv := range nodeua.TypeVariables(srv.NamespaceIndex()) {
			if st := write(t, c, srv.NodeID(tv.Name), tv.Value); st != ua.StatusOK {
				t.Errorf("write %s back: %v", tv.Name, st)
			}
		}
		cases := []struct {
			node string
			val  any
			want ua.StatusCode
		}{
			{nodeua.NodeReadOnly, int32(1), ua.StatusBadNotWritable},
			{nodeua.NodeMotor1Speed, "fast", ua.StatusBadTypeMismatch},
			{"Types.Int32", int64(1), ua.StatusBadTypeMismatch},
			{nodeua.NodeOperatorOnly, 11.0, ua.StatusBadUserAccessDenied},
			{nodeua.NodeCounter, uint32(0), ua.StatusBadNotWritable},
		}
		for _, tc := range cases {
			if st := write(t, c, srv.NodeID(tc.node), ua.MustVariant(tc.val)); st != tc.want {
				t.Errorf("write %s = %v: %v, want %v", tc.node, tc.val, st, tc.want)
			}
		}
		if v, err := srv.Read(nodeua.NodeReadOnly); err != nil || v.Value() != nodeua.ReadOnlyValue {
			t.Errorf("ReadOnly changed to %v (%v)", v, err)
		}
		// Set through the control channel, read through OPC UA.
		if err := srv.Set(nodeua.NodeReadOnly, int32(7)); err != nil {
			t.Fatal(err)
		}
		if dv := readValues(t, c, srv.NodeID(nodeua.NodeReadOnly))[0]; dv.Value.Value() != int32(7) {
			t.Errorf("ReadOnly after Set = %v", dv.Value.Value())
		}
		if err := srv.Set("NoSuchNode", int32(1)); !errors.Is(err, nodeua.ErrCommand) {
			t.Errorf("Set unknown node: %v, want ErrCommand", err)
		}
	})

	t.Run("method", func(t *testing.T) {
		res, err := c.Call(ctx, &ua.CallMethodRequest{
			ObjectID:       srv.NodeID(nodeua.NodeMethods),
			MethodID:       srv.NodeID(nodeua.NodeAdd),
			InputArguments: []*ua.Variant{ua.MustVariant(1.25), ua.MustVariant(2.5)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != ua.StatusOK || len(res.OutputArguments) != 1 || res.OutputArguments[0].Value() != 3.75 {
			t.Errorf("Add(1.25, 2.5) = %v %v, want Good [3.75]", res.StatusCode, res.OutputArguments)
		}
		res, err = c.Call(ctx, &ua.CallMethodRequest{
			ObjectID: srv.NodeID(nodeua.NodeMethods), MethodID: srv.NodeID(nodeua.NodeAdd),
			InputArguments: []*ua.Variant{ua.MustVariant("x"), ua.MustVariant(2.5)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == ua.StatusOK {
			t.Errorf("Add(\"x\", 2.5) succeeded")
		}
	})

	t.Run("browse path", func(t *testing.T) {
		path := []*ua.QualifiedName{}
		for _, name := range []string{"Line1", "Motor1", "Speed"} {
			path = append(path, &ua.QualifiedName{NamespaceIndex: srv.NamespaceIndex(), Name: name})
		}
		id, err := c.Node(ua.NewNumericNodeID(0, 85)).TranslateBrowsePathsToNodeIDs(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if id.String() != srv.NodeID(nodeua.NodeMotor1Speed).String() {
			t.Errorf("Objects/Line1/Motor1/Speed = %v, want %v", id, srv.NodeID(nodeua.NodeMotor1Speed))
		}
	})

	t.Run("generated and counter", func(t *testing.T) {
		dvs := readValues(t, c, srv.NodeID(nodeua.GenNode(2)), srv.NodeID(nodeua.NodeCounter))
		if dvs[0].Value.Value() != int32(2) {
			t.Errorf("Gen.2 = %v", dvs[0].Value.Value())
		}
		first := dvs[1].Value.Value().(uint32)
		time.Sleep(100 * time.Millisecond)
		if now := readValues(t, c, srv.NodeID(nodeua.NodeCounter))[0].Value.Value().(uint32); now <= first {
			t.Errorf("Counter did not advance: %d then %d", first, now)
		}
	})

	st, err := srv.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Sessions != 1 {
		t.Errorf("Stats: %+v, want one session", st)
	}
}

// TestNodeUASecurityAndUsers checks every secure policy/mode with
// username identities and the server certificate the harness reports.
func TestNodeUASecurityAndUsers(t *testing.T) {
	t.Parallel()
	const appURI = "urn:rcbridge:test:client"
	client := newTestCert(t, "rcbridge test client", appURI)
	srv := nodeua.Start(t, nodeua.Config{
		RejectUnknownClientCerts: true,
		TrustedClientCerts:       [][]byte{client.DER},
	})
	pinned := srv.CertificateDER()
	for _, policy := range []string{"Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"} {
		for _, mode := range []ua.MessageSecurityMode{ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt} {
			t.Run(policy+"/"+mode.String(), func(t *testing.T) {
				ep := endpoint(t, srv, policy, mode)
				if !bytes.Equal(ep.ServerCertificate, pinned) {
					t.Fatalf("endpoint certificate differs from CertificateDER")
				}
				for _, u := range []struct {
					user, pass string
					want       ua.StatusCode
				}{
					{nodeua.OperatorUser, nodeua.OperatorPassword, ua.StatusOK},
					{nodeua.ReaderUser, nodeua.ReaderPassword, ua.StatusBadUserAccessDenied},
				} {
					c := dial(t, srv, policy, mode,
						opcua.ApplicationURI(appURI), opcua.Certificate(client.DER), opcua.PrivateKey(client.Key),
						opcua.AuthUsername(u.user, u.pass), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName))
					if st := write(t, c, srv.NodeID(nodeua.NodeOperatorOnly), ua.MustVariant(12.5)); st != u.want {
						t.Errorf("%s writes OperatorOnly: %v, want %v", u.user, st, u.want)
					}
					_ = c.Close(context.Background())
				}
			})
		}
	}

	t.Run("None/username", func(t *testing.T) {
		// Over a None channel the password is encrypted with the user token
		// policy's own security policy.
		ep := endpoint(t, srv, "None", ua.MessageSecurityModeNone)
		c := dial(t, srv, "None", ua.MessageSecurityModeNone,
			opcua.AuthUsername(nodeua.ReaderUser, nodeua.ReaderPassword), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName))
		if st := write(t, c, srv.NodeID(nodeua.NodeOperatorOnly), ua.MustVariant(12.5)); st != ua.StatusBadUserAccessDenied {
			t.Errorf("reader over None writes OperatorOnly: %v, want BadUserAccessDenied", st)
		}
		if st := write(t, c, srv.NodeID(nodeua.NodeMotor1Speed), ua.MustVariant(12.5)); st != ua.StatusOK {
			t.Errorf("reader over None writes Speed: %v, want Good (anonymous may write it)", st)
		}
	})

	t.Run("untrusted client certificate", func(t *testing.T) {
		stranger := newTestCert(t, "stranger", "urn:rcbridge:test:stranger")
		ep := endpoint(t, srv, "Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := opcua.NewClient(srv.DialURL(), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous),
			opcua.ApplicationURI("urn:rcbridge:test:stranger"), opcua.Certificate(stranger.DER),
			opcua.PrivateKey(stranger.Key), opcua.AuthAnonymous(), opcua.AutoReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Connect(ctx)
		_ = c.Close(ctx)
		if err == nil {
			t.Fatal("connected with an untrusted client certificate")
		}
		t.Logf("untrusted client certificate rejected: %v", err)
		if err := srv.TrustClientCert(stranger.DER); err != nil {
			t.Fatal(err)
		}
		dial(t, srv, "Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt,
			opcua.ApplicationURI("urn:rcbridge:test:stranger"), opcua.Certificate(stranger.DER),
			opcua.PrivateKey(stranger.Key), opcua.AuthAnonymous(), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous))
	})

	t.Run("wrong password", func(t *testing.T) {
		ep := endpoint(t, srv, "Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := opcua.NewClient(srv.DialURL(), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName),
			opcua.ApplicationURI(appURI), opcua.Certificate(client.DER), opcua.PrivateKey(client.Key),
			opcua.AuthUsername(nodeua.OperatorUser, "wrong"), opcua.AutoReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Connect(ctx)
		_ = c.Close(ctx)
		if err == nil {
			t.Fatal("session activated with a wrong password")
		}
	})
}

// TestNodeUAX509User logs in with an X.509 user certificate.
func TestNodeUAX509User(t *testing.T) {
	t.Parallel()
	const appURI = "urn:rcbridge:test:client"
	client := newTestCert(t, "rcbridge test client", appURI)
	user := newTestCert(t, "x509-operator", "")
	srv := nodeua.Start(t, nodeua.Config{
		Users:     []nodeua.User{},
		X509Users: []nodeua.X509User{{Certificate: user.DER, Role: nodeua.RoleOperator}},
	})
	ep := endpoint(t, srv, "Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt)
	c := dial(t, srv, "Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt,
		opcua.ApplicationURI(appURI), opcua.Certificate(client.DER), opcua.PrivateKey(client.Key),
		opcua.AuthCertificate(user.DER), opcua.AuthPrivateKey(user.Key),
		opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeCertificate))
	if st := write(t, c, srv.NodeID(nodeua.NodeOperatorOnly), ua.MustVariant(13.0)); st != ua.StatusOK {
		t.Errorf("X.509 operator writes OperatorOnly: %v", st)
	}
}

// TestNodeUALifecycle covers Restart, Kill, Pause and the control channel
// after the process is gone.
func TestNodeUALifecycle(t *testing.T) {
	t.Parallel()
	srv := nodeua.Start(t, nodeua.Config{CounterStart: 1000})
	port, cert := srv.Port(), srv.CertificateDER()
	if err := srv.Set(nodeua.NodeMotor1Speed, 99.0); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v (server-side startup %v)", time.Since(begin), srv.StartupTime())
	if srv.Port() != port || !bytes.Equal(srv.CertificateDER(), cert) {
		t.Errorf("restart changed port %d→%d or certificate", port, srv.Port())
	}
	if v, err := srv.Read(nodeua.NodeMotor1Speed); err != nil || v.Value() != nodeua.Motor1SpeedValue {
		t.Errorf("after restart Speed = %v (%v), want the initial value", v, err)
	}
	if v, err := srv.Read(nodeua.NodeCounter); err != nil || v.Value().(uint32) < 1000 {
		t.Errorf("Counter = %v (%v), want ≥ 1000", v, err)
	}

	c := dial(t, srv, "None", ua.MessageSecurityModeNone, opcua.AuthAnonymous(),
		opcua.SecurityFromEndpoint(endpoint(t, srv, "None", ua.MessageSecurityModeNone), ua.UserTokenTypeAnonymous))
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: srv.NodeID(nodeua.NodeCounter), AttributeID: ua.AttributeIDValue}}})
	cancel()
	if err == nil {
		t.Error("a paused server answered a Read")
	}
	if err := srv.Continue(); err != nil {
		t.Fatal(err)
	}
	readValues(t, c, srv.NodeID(nodeua.NodeCounter))

	// DropConnections cuts the channel but keeps the session.
	if n, err := srv.DropConnections(); err != nil || n != 1 {
		t.Fatalf("DropConnections = %d, %v; want 1", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := srv.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Channels == 0 && st.Sessions == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after DropConnections: %+v, want 0 channels and the session kept", st)
		}
		time.Sleep(20 * time.Millisecond)
	}

	srv.Kill()
	if _, err := srv.Read(nodeua.NodeCounter); !errors.Is(err, nodeua.ErrNotRunning) {
		t.Errorf("Read after Kill: %v, want ErrNotRunning", err)
	}
	conn, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
	if err == nil {
		conn.Close()
		t.Error("the killed server still accepts connections")
	} else if !strings.Contains(err.Error(), "refused") {
		t.Logf("dial after kill: %v", err)
	}
}
