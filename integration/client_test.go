//go:build integration

package integration

// Tests of rc's client (Factory.Build and the services) against node-opcua
// with native reverse connect: the server dials our listener, sends its RHE
// with the unresolvable host plc.invalid, and the client runs the session on
// that socket.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/rc"
)

const clientAppURI = "urn:rcbridge:test:rc-client"

// rcServer is a node-opcua server reverse-connecting to rcbridge's
// admission Listener; a Broker hands out its connections.
type rcServer struct {
	*nodeua.Server
	l *rc.Listener
	b *rc.Broker
}

func startReverse(t testing.TB, cfg nodeua.Config) *rcServer {
	t.Helper()
	if cfg.ApplicationURI == "" {
		cfg.ApplicationURI = nodeua.DefaultApplicationURI
	}
	allow, err := rc.NewAllowList(cfg.ApplicationURI)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := rc.Listen(ctx, "127.0.0.1:0", rc.ListenerConfig{Validator: allow})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	b, err := rc.NewBroker(l, rc.BrokerConfig{})
	if err != nil {
		cancel()
		l.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		l.Close()
		<-done
	})
	cfg.Hostname = "plc.invalid"
	cfg.ReverseConnect = &nodeua.ReverseConnect{ClientURLs: []string{"opc.tcp://" + l.Addr().String()}}
	return &rcServer{Server: nodeua.Start(t, cfg), l: l, b: b}
}

// accept waits for the server's next admitted reverse connection.
func (s *rcServer) accept(t testing.TB) *rc.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := s.b.Next(ctx, s.ApplicationURI())
	if err != nil {
		t.Fatalf("no reverse connection: %v", err)
	}
	return sess
}

// build accepts the next reverse connection and builds a client on it,
// closed at the end of the test.
func (s *rcServer) build(t testing.TB, f *rc.Factory) *rc.Client {
	t.Helper()
	c, err := s.tryBuild(t, f)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func (s *rcServer) tryBuild(t testing.TB, f *rc.Factory) (*rc.Client, error) {
	t.Helper()
	sess := s.accept(t)
	if sess.EndpointURL != s.EndpointURL() {
		t.Fatalf("RHE EndpointUrl %q, want %q", sess.EndpointURL, s.EndpointURL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f.Build(ctx, sess)
}

func factory(t testing.TB, cfg rc.ClientConfig) *rc.Factory {
	t.Helper()
	f, err := rc.NewFactory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func clientKeyPair(t *testing.T) rc.KeyPair {
	t.Helper()
	kp, err := rc.GenerateKeyPair(rc.CertificateTemplate{ApplicationURI: clientAppURI, CommonName: "rcbridge rc test"})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestClientNodeUA runs the client against node-opcua in every security
// configuration and checks the services.
func TestClientNodeUA(t *testing.T) {
	kp := clientKeyPair(t)
	user := newTestCert(t, "x509-operator", "")
	srv := startReverse(t, nodeua.Config{
		X509Users: []nodeua.X509User{{Certificate: user.DER, Role: nodeua.RoleOperator}},
	})
	pinned := map[string][]byte{srv.ApplicationURI(): srv.CertificateDER()}

	t.Run("None/Anonymous/Services", func(t *testing.T) {
		c := srv.build(t, factory(t, rc.ClientConfig{}))
		testTypes(t, srv.Server, c)
		testWrites(t, srv.Server, c, ua.StatusBadUserAccessDenied)
		testCallBrowse(t, srv.Server, c)
	})

	for _, policy := range []rc.SecurityPolicy{rc.SecurityPolicyBasic256Sha256, rc.SecurityPolicyAes128Sha256RsaOaep, rc.SecurityPolicyAes256Sha256RsaPss} {
		for _, mode := range []rc.SecurityMode{rc.SecurityModeSign, rc.SecurityModeSignAndEncrypt} {
			t.Run(policy.String()+"/"+mode.String()+"/Operator", func(t *testing.T) {
				c := srv.build(t, factory(t, rc.ClientConfig{
					SecurityPolicy: policy, SecurityMode: mode, KeyPair: kp,
					Trust:    rc.TrustConfig{Pinned: pinned},
					Identity: rc.UserNameIdentity(nodeua.OperatorUser, rc.NewSecret(nodeua.OperatorPassword)),
				}))
				testWrites(t, srv.Server, c, ua.StatusOK)
				if policy == rc.SecurityPolicyBasic256Sha256 {
					testTypes(t, srv.Server, c)
					testCallBrowse(t, srv.Server, c)
				}
			})
		}
	}

	t.Run("Basic256Sha256/SignAndEncrypt/Reader", func(t *testing.T) {
		c := srv.build(t, factory(t, rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust:    rc.TrustConfig{Pinned: pinned},
			Identity: rc.UserNameIdentity(nodeua.ReaderUser, rc.NewSecret(nodeua.ReaderPassword)),
		}))
		testWrites(t, srv.Server, c, ua.StatusBadUserAccessDenied)
	})

	t.Run("None/UserName", func(t *testing.T) {
		// The password is encrypted with the server's certificate per its
		// user token policy, so the certificate must be trusted.
		c := srv.build(t, factory(t, rc.ClientConfig{
			Trust:    rc.TrustConfig{Pinned: pinned},
			Identity: rc.UserNameIdentity(nodeua.OperatorUser, rc.NewSecret(nodeua.OperatorPassword)),
		}))
		testWrites(t, srv.Server, c, ua.StatusOK)
	})

	t.Run("None/UserName/WrongPassword", func(t *testing.T) {
		_, err := srv.tryBuild(t, factory(t, rc.ClientConfig{
			Trust:    rc.TrustConfig{Pinned: pinned},
			Identity: rc.UserNameIdentity(nodeua.OperatorUser, rc.NewSecret("wrong-password")),
		}))
		if !errors.Is(err, ua.StatusBadUserAccessDenied) && !errors.Is(err, ua.StatusBadIdentityTokenRejected) && !errors.Is(err, ua.StatusBadIdentityTokenInvalid) {
			t.Fatalf("Build = %v, want a rejected identity", err)
		}
		if bytes.Contains([]byte(err.Error()), []byte("wrong-password")) {
			t.Fatal("password in error")
		}
	})

	t.Run("Basic256Sha256/SignAndEncrypt/X509User", func(t *testing.T) {
		c := srv.build(t, factory(t, rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust:    rc.TrustConfig{Pinned: pinned},
			Identity: rc.CertificateIdentity(user.DER, user.Key),
		}))
		st, err := c.WriteValue(ctx10s(t), srv.NodeID(nodeua.NodeOperatorOnly), ua.MustVariant(13.0))
		if err != nil || st != ua.StatusOK {
			t.Fatalf("X.509 operator writes OperatorOnly: %v, %v", st, err)
		}
	})

	t.Run("Basic256Sha256/SignAndEncrypt/TokenRenewal", func(t *testing.T) {
		// gopcua renews the security token after 75% of its lifetime; the
		// session must carry on across the renewal.
		c := srv.build(t, factory(t, rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust:           rc.TrustConfig{Pinned: pinned},
			ChannelLifetime: 10 * time.Second,
		}))
		deadline := time.Now().Add(12 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := c.ReadValues(ctx10s(t), srv.NodeID(nodeua.NodeMotor1Speed)); err != nil {
				t.Fatalf("read at %s: %v", time.Until(deadline), err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("UntrustedServerCertificate", func(t *testing.T) {
		other := newTestCert(t, "other", srv.ApplicationURI())
		f := factory(t, rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust: rc.TrustConfig{Pinned: map[string][]byte{srv.ApplicationURI(): other.DER}},
		})
		// The server cannot decrypt an OpenSecureChannel made for another
		// certificate and hangs up; the next dial finds out by discovery.
		if _, err := srv.tryBuild(t, f); !errors.Is(err, rc.ErrHandshake) {
			t.Fatalf("first dial: %v, want ErrHandshake", err)
		}
		_, err := srv.tryBuild(t, f)
		var ce *rc.CertificateError
		if !errors.Is(err, rc.ErrUntrustedCertificate) || !errors.As(err, &ce) {
			t.Fatalf("second dial: %v, want ErrUntrustedCertificate", err)
		}
		if ce.Thumbprint != rc.Thumbprint(srv.CertificateDER()) {
			t.Errorf("thumbprint %s, want the server's %s", ce.Thumbprint, rc.Thumbprint(srv.CertificateDER()))
		}
	})

	t.Run("ServerCertificateNotInTrustDir", func(t *testing.T) {
		other := newTestCert(t, "other", srv.ApplicationURI())
		f := factory(t, rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust: rc.TrustConfig{Dir: certDir(t, other.DER)},
		})
		_, err := srv.tryBuild(t, f)
		var ce *rc.CertificateError
		if !errors.Is(err, rc.ErrUntrustedCertificate) || !errors.As(err, &ce) || ce.Thumbprint != rc.Thumbprint(srv.CertificateDER()) {
			t.Fatalf("Build = %v, want ErrUntrustedCertificate naming the server's certificate", err)
		}
		if _, ok := f.Endpoints(srv.ApplicationURI()); ok {
			t.Error("untrusted endpoints cached")
		}
	})

	t.Run("ApplicationURIMismatch", func(t *testing.T) {
		// The server's certificate is trusted, but the ReverseHello claims
		// to come from another server.
		f := factory(t, rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust: rc.TrustConfig{Dir: certDir(t, srv.CertificateDER())},
		})
		impostor := *srv.accept(t) // a copy: the Broker may still read the original
		impostor.ServerURI = "urn:plant:impostor"
		_, err := f.Build(ctx10s(t), &impostor)
		if !errors.Is(err, rc.ErrApplicationURIMismatch) {
			t.Fatalf("Build = %v, want ErrApplicationURIMismatch", err)
		}
	})

	t.Run("DiscoveryFirst", func(t *testing.T) {
		f := factory(t, rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust:    rc.TrustConfig{Dir: certDir(t, srv.CertificateDER())},
			Identity: rc.UserNameIdentity(nodeua.OperatorUser, rc.NewSecret(nodeua.OperatorPassword)),
		})
		if _, err := srv.tryBuild(t, f); !errors.Is(err, rc.ErrRedialNeeded) {
			t.Fatalf("first dial: %v, want ErrRedialNeeded", err)
		}
		c := srv.build(t, f) // the server's next dial
		testWrites(t, srv.Server, c, ua.StatusOK)
	})
}

func certDir(t *testing.T, der []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.der"), der, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testTypes reads every variable of the Types folder and checks the decoded
// values and the DataType/ValueRank information.
func testTypes(t *testing.T, srv *nodeua.Server, c *rc.Client) {
	t.Helper()
	vars := nodeua.TypeVariables(srv.NamespaceIndex())
	ids := make([]*ua.NodeID, len(vars))
	for i, v := range vars {
		var err error
		if ids[i], err = c.ParseNodeID(srv.ExpandedNodeID(v.Name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctx10s(t)
	dvs, err := c.ReadValues(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := c.ReadVariableInfo(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vars {
		if dvs[i].Status != ua.StatusOK || dvs[i].Value == nil {
			t.Errorf("%s: status %v", v.Name, dvs[i].Status)
			continue
		}
		if got, want := encoded(t, dvs[i].Value), encoded(t, v.Value); !bytes.Equal(got, want) {
			t.Errorf("%s = %v, want %v", v.Name, dvs[i].Value.Value(), v.Value.Value())
		}
		if infos[i].Status != ua.StatusOK || infos[i].BuiltinType != v.DataType || infos[i].ValueRank != v.ValueRank {
			t.Errorf("%s: info {status %v type %v rank %d}, want {type %v rank %d}", v.Name,
				infos[i].Status, infos[i].BuiltinType, infos[i].ValueRank, v.DataType, v.ValueRank)
		}
	}
}

// testWrites checks the write outcomes; operatorOnly is the expected status
// of writing the OperatorOnly node with the session's identity.
func testWrites(t *testing.T, srv *nodeua.Server, c *rc.Client, operatorOnly ua.StatusCode) {
	t.Helper()
	ctx := ctx10s(t)
	for _, tc := range []struct {
		node string
		v    any
		want ua.StatusCode
	}{
		{nodeua.NodeMotor2Speed, 812.5, ua.StatusOK},
		{nodeua.NodeReadOnly, int32(7), ua.StatusBadNotWritable},
		{nodeua.NodeMotor2Speed, "fast", ua.StatusBadTypeMismatch},
		{nodeua.NodeOperatorOnly, 11.5, operatorOnly},
	} {
		st, err := c.WriteValue(ctx, srv.NodeID(tc.node), ua.MustVariant(tc.v))
		if err != nil || st != tc.want {
			t.Errorf("write %s = %v: %v, %v; want %v", tc.node, tc.v, st, err, tc.want)
		}
	}
	got, err := srv.Read(nodeua.NodeMotor2Speed)
	if err != nil || got.Value() != 812.5 {
		t.Errorf("server-side Motor2.Speed = %v, %v; want 812.5", got, err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended after Bad write results: %v", err)
	}
}

func testCallBrowse(t *testing.T, srv *nodeua.Server, c *rc.Client) {
	t.Helper()
	ctx := ctx10s(t)
	res, err := c.CallMethod(ctx, srv.NodeID(nodeua.NodeMethods), srv.NodeID(nodeua.NodeAdd), ua.MustVariant(2.5), ua.MustVariant(4.0))
	if err != nil || res.StatusCode != ua.StatusOK || len(res.OutputArguments) != 1 || res.OutputArguments[0].Value() != 6.5 {
		t.Fatalf("Add(2.5, 4) = %+v, %v", res, err)
	}
	res, err = c.CallMethod(ctx, srv.NodeID(nodeua.NodeMethods), srv.NodeID(nodeua.NodeAdd), ua.MustVariant("x"))
	if err != nil || res.StatusCode == ua.StatusOK {
		t.Errorf("Add(\"x\") = %+v, %v; want a Bad status", res, err)
	}

	ns := srv.NamespaceIndex()
	refs, err := c.BrowseAll(ctx, &ua.BrowseDescription{
		NodeID:          srv.NodeID(nodeua.NodeLine1),
		BrowseDirection: ua.BrowseDirectionForward,
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
		IncludeSubtypes: true,
		NodeClassMask:   uint32(ua.NodeClassObject),
		ResultMask:      uint32(ua.BrowseResultMaskAll),
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.BrowseName.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"Motor1", "Motor2"}) {
		t.Errorf("Line1 children = %q", names)
	}
	speed, err := c.ResolveBrowsePath(ctx, ua.NewNumericNodeID(0, id.ObjectsFolder),
		&ua.QualifiedName{NamespaceIndex: ns, Name: "Line1"},
		&ua.QualifiedName{NamespaceIndex: ns, Name: "Motor1"},
		&ua.QualifiedName{NamespaceIndex: ns, Name: "Speed"})
	if err != nil || !speed.Equal(srv.NodeID(nodeua.NodeMotor1Speed)) {
		t.Errorf("Objects/Line1/Motor1/Speed = %v, %v", speed, err)
	}
	_, err = c.ResolveBrowsePath(ctx, ua.NewNumericNodeID(0, id.ObjectsFolder), &ua.QualifiedName{NamespaceIndex: ns, Name: "Nope"})
	if !errors.Is(err, rc.ErrBrowsePath) {
		t.Errorf("missing path: %v, want ErrBrowsePath", err)
	}
}

// TestClientNodeUALimits checks that requests are split by the server's
// advertised (and enforced) operation limits.
func TestClientNodeUALimits(t *testing.T) {
	const n = 23
	srv := startReverse(t, nodeua.Config{
		GeneratedNodes:  n,
		OperationLimits: nodeua.OperationLimits{MaxNodesPerRead: 5, MaxNodesPerWrite: 4, MaxNodesPerBrowse: 3},
	})
	c := srv.build(t, factory(t, rc.ClientConfig{}))
	lim := c.OperationLimits()
	if lim.MaxNodesPerRead != 5 || lim.MaxNodesPerWrite != 4 || lim.MaxNodesPerBrowse != 3 {
		t.Fatalf("limits = %+v", lim)
	}
	ctx := ctx10s(t)
	ids := make([]*ua.NodeID, n)
	writes := &ua.WriteRequest{}
	for i := range ids {
		ids[i] = srv.NodeID(nodeua.GenNode(i))
		writes.NodesToWrite = append(writes.NodesToWrite, &ua.WriteValue{NodeID: ids[i],
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(int32(100 + i))}})
	}
	wres, err := c.Write(ctx, writes)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range wres.Results {
		if st != ua.StatusOK {
			t.Errorf("write %d: %v", i, st)
		}
	}
	dvs, err := c.ReadValues(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, dv := range dvs {
		if dv.Value == nil || dv.Value.Value() != int32(100+i) {
			t.Errorf("Gen.%d = %v, want %d", i, dv.Value, 100+i)
		}
	}
	descs := make([]*ua.BrowseDescription, 7)
	for i := range descs {
		descs[i] = &ua.BrowseDescription{NodeID: srv.NodeID(nodeua.NodeLine1), BrowseDirection: ua.BrowseDirectionForward, ResultMask: uint32(ua.BrowseResultMaskAll)}
	}
	bres, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: descs})
	if err != nil || len(bres.Results) != len(descs) {
		t.Fatalf("Browse of %d nodes: %v", len(descs), err)
	}
}

// TestClientNodeUAResume moves a session to the server's next reverse
// connection after the socket dropped, and creates a new one after a server
// restart.
func TestClientNodeUAResume(t *testing.T) {
	kp := clientKeyPair(t)
	srv := startReverse(t, nodeua.Config{})
	pinned := map[string][]byte{srv.ApplicationURI(): srv.CertificateDER()}
	for _, tc := range []struct {
		name string
		cfg  rc.ClientConfig
	}{
		{"None/Anonymous", rc.ClientConfig{}},
		{"Basic256Sha256/SignAndEncrypt/Operator", rc.ClientConfig{
			SecurityPolicy: rc.SecurityPolicyBasic256Sha256, SecurityMode: rc.SecurityModeSignAndEncrypt, KeyPair: kp,
			Trust:    rc.TrustConfig{Pinned: pinned},
			Identity: rc.UserNameIdentity(nodeua.OperatorUser, rc.NewSecret(nodeua.OperatorPassword)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.build(t, factory(t, tc.cfg))
			id0 := c.SessionID()
			for i := range 3 {
				if n, err := srv.DropConnections(); err != nil || n == 0 {
					t.Fatalf("DropConnections = %d, %v", n, err)
				}
				select {
				case <-c.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("the drop went unnoticed")
				}
				outcome, err := c.Resume(ctx10s(t), srv.accept(t))
				if err != nil || outcome != rc.SessionResumed {
					t.Fatalf("Resume %d = %v, %v; want resumed", i, outcome, err)
				}
				if !c.SessionID().Equal(id0) {
					t.Fatalf("session id changed")
				}
				st, err := c.WriteValue(ctx10s(t), srv.NodeID(nodeua.NodeMotor1Speed), ua.MustVariant(float64(1000+i)))
				if err != nil || st != ua.StatusOK {
					t.Fatalf("write after resume: %v, %v", st, err)
				}
			}
			if stats, err := srv.Stats(); err != nil || stats.Sessions != 1 {
				t.Errorf("server stats %+v, %v; want exactly one session", stats, err)
			}
		})
	}

	t.Run("ServerRestarted", func(t *testing.T) {
		c := srv.build(t, factory(t, rc.ClientConfig{}))
		id0 := c.SessionID()
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the restart went unnoticed")
		}
		outcome, err := c.Resume(ctx10s(t), srv.accept(t))
		if err != nil || outcome != rc.SessionRecreated {
			t.Fatalf("Resume = %v, %v; want recreated", outcome, err)
		}
		if c.SessionID().Equal(id0) {
			t.Error("same session id after a restart")
		}
		if _, err := c.ReadValues(ctx10s(t), srv.NodeID(nodeua.NodeMotor1Speed)); err != nil {
			t.Fatal(err)
		}
	})
}
