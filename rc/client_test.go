package rc_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// TestSession covers a session's life on one server: setup, failures,
// close.
func TestSession(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	t.Run("BuildNone", func(t *testing.T) { testBuildNone(t, srv) })
	t.Run("UnresolvableEndpointHost", func(t *testing.T) { testUnresolvableEndpointHost(t, srv) })
	t.Run("StalledServerAfterSetup", func(t *testing.T) { testStalledServerAfterSetup(t, srv) })
	t.Run("ConnectionDropped", func(t *testing.T) { testConnectionDropped(t, srv) })
}

func testBuildNone(t *testing.T, srv *rctest.Server) {
	f := newFactory(t, rc.ClientConfig{})
	c, _ := build(t, f, srv)

	if c.ServerURI() != rctest.DefaultServerURI {
		t.Errorf("ServerURI = %q", c.ServerURI())
	}
	if c.SessionID() == nil {
		t.Error("no session id")
	}
	ns := c.NamespaceArray()
	if len(ns) < 2 || ns[0] != "http://opcfoundation.org/UA/" || !slices.Contains(ns, rctest.DefaultNamespaceURI) {
		t.Errorf("NamespaceArray = %q", ns)
	}
	if got := c.OperationLimits().MaxNodesPerRead; got != rctest.MaxNodesPerRead {
		t.Errorf("MaxNodesPerRead = %d, want %d", got, rctest.MaxNodesPerRead)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
	if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Err(); !errors.Is(err, rc.ErrClosed) {
		t.Errorf("Err after Close = %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if _, err := c.ReadValues(ctxTimeout(t, time.Second), ua.NewNumericNodeID(0, 2258)); !errors.Is(err, rc.ErrClosed) {
		t.Errorf("Read after Close: %v, want rc.ErrClosed", err)
	}
}

// fixture is one server with an address space for the service tests, and
// one client on it: gopcua's server takes long to start under -race.
type fixture struct {
	srv    *rctest.Server
	c      *rc.Client
	ids    map[string]*ua.NodeID // typed variables by type name
	values map[string]any
	calc   *ua.NodeID
	add    *ua.NodeID
	line   *ua.NodeID
	speed  *ua.NodeID
	tags   []string
}

const fixtureNS = "urn:plant:line1"

func TestServices(t *testing.T) {
	fx := &fixture{srv: newServer(t, rctest.Options{NamespaceURI: fixtureNS})}
	fx.ids, fx.values = addTypedVariables(fx.srv)
	fx.calc = fx.srv.AddObject(nil, "Calc")
	fx.add = fx.srv.AddMethod(fx.calc, "Add", addMethod)
	fx.line = fx.srv.AddObject(nil, "Line1")
	fx.speed = fx.srv.AddVariable("Speed", 3.5, false)
	fx.srv.AddChild(fx.line, fx.speed)
	for i := range 7 {
		name := fmt.Sprintf("Tag%d", i)
		fx.srv.AddChild(fx.line, fx.srv.AddVariable(name, int32(i), false))
		fx.tags = append(fx.tags, name)
	}
	fx.c, _ = build(t, newFactory(t, rc.ClientConfig{}), fx.srv)

	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"ReadTypedValues", testReadTypedValues},
		{"ReadVariableInfo", testReadVariableInfo},
		{"Write", testWrite},
		{"CallMethod", testCallMethod},
		{"Browse", testBrowse},
		{"ResolveBrowsePath", testResolveBrowsePath},
		{"NamespaceResolution", testNamespaceResolution},
		{"InvalidRequests", testInvalidRequests},
		{"ConcurrentCalls", testConcurrentCalls},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fx) })
	}
}

func addMethod(args []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	if len(args) != 2 {
		return nil, ua.StatusBadArgumentsMissing
	}
	a, ok1 := args[0].Value().(int32)
	b, ok2 := args[1].Value().(int32)
	if !ok1 || !ok2 {
		return nil, ua.StatusBadTypeMismatch
	}
	return []*ua.Variant{ua.MustVariant(a + b)}, ua.StatusOK
}

// addTypedVariables adds one writable variable per built-in scalar type
// gopcua's server can hold, a string array, and a read-only one.
func addTypedVariables(srv *rctest.Server) (map[string]*ua.NodeID, map[string]any) {
	values := map[string]any{
		"Bool":       true,
		"SByte":      int8(-8),
		"Byte":       uint8(8),
		"Int16":      int16(-16),
		"UInt16":     uint16(16),
		"Int32":      int32(-32),
		"UInt32":     uint32(32),
		"Int64":      int64(-1) << 40,
		"UInt64":     uint64(1) << 60,
		"Float":      float32(1.5),
		"Double":     2.25,
		"String":     "grüße",
		"DateTime":   time.Date(2024, 2, 29, 12, 0, 0, 123_000_000, time.UTC),
		"ByteString": []byte{0, 1, 2, 0xff},
		"Strings":    []string{"a", "b"},
	}
	ids := make(map[string]*ua.NodeID)
	for name, v := range values {
		ids[name] = srv.AddVariable(name, v, true)
	}
	ids["ReadOnly"] = srv.AddVariable("ReadOnly", int32(7), false)
	return ids, values
}

func testReadTypedValues(t *testing.T, fx *fixture) {
	c, ids, values := fx.c, fx.ids, fx.values
	names := slices.Sorted(maps.Keys(values))
	nodes := make([]*ua.NodeID, len(names))
	for i, n := range names {
		nodes[i] = ids[n]
	}
	dvs, err := c.ReadValues(ctxTimeout(t, 5*time.Second), nodes...)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		if dvs[i].Status != ua.StatusOK {
			t.Errorf("%s: status %v", name, dvs[i].Status)
			continue
		}
		if got := dvs[i].Value.Value(); !reflect.DeepEqual(got, values[name]) {
			t.Errorf("%s = %#v, want %#v", name, got, values[name])
		}
	}
}

func testReadVariableInfo(t *testing.T, fx *fixture) {
	c, ids := fx.c, fx.ids
	ctx := ctxTimeout(t, 5*time.Second)
	infos, err := c.ReadVariableInfo(ctx, ids["Double"], ids["Strings"], ids["ReadOnly"], ua.NewStringNodeID(1, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ    ua.TypeID
		rank   int32
		access ua.AccessLevelType
		status ua.StatusCode
	}{
		{ua.TypeIDDouble, -1, ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite, ua.StatusOK},
		{ua.TypeIDString, 1, ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite, ua.StatusOK},
		{ua.TypeIDInt32, -1, ua.AccessLevelTypeCurrentRead, ua.StatusOK},
		{0, 0, 0, ua.StatusBadNodeIDUnknown},
	}
	for i, w := range want {
		got := infos[i]
		if got.BuiltinType != w.typ || got.ValueRank != w.rank || got.UserAccessLevel != w.access || got.Status != w.status {
			t.Errorf("info[%d] = {type %v rank %d access %v status %v}, want %+v", i, got.BuiltinType, got.ValueRank, got.UserAccessLevel, got.Status, w)
		}
	}
	// Subtypes resolve through the server's HasSubtype hierarchy.
	for _, tc := range []struct {
		dataType uint32
		want     ua.TypeID
	}{
		{id.UtcTime, ua.TypeIDDateTime},
		{id.Duration, ua.TypeIDDouble},
		{id.ServerState, ua.TypeIDInt32}, // an enumeration
		{id.Number, ua.TypeIDNull},
	} {
		got, err := c.BuiltinType(ctx, ua.NewNumericNodeID(0, tc.dataType))
		if err != nil || got != tc.want {
			t.Errorf("BuiltinType(i=%d) = %v, %v; want %v", tc.dataType, got, err, tc.want)
		}
	}
}

func testWrite(t *testing.T, fx *fixture) {
	c, ids := fx.c, fx.ids
	ctx := ctxTimeout(t, 5*time.Second)

	st, err := c.WriteValue(ctx, ids["Int32"], ua.MustVariant(int32(4242)))
	if err != nil || st != ua.StatusOK {
		t.Fatalf("WriteValue = %v, %v", st, err)
	}
	dvs, err := c.ReadValues(ctx, ids["Int32"])
	if err != nil || dvs[0].Value.Value() != int32(4242) {
		t.Fatalf("read back: %v, %v", dvs, err)
	}
	// A node-level Bad status is a result, not an error, and the session
	// stays usable.
	st, err = c.WriteValue(ctx, ids["ReadOnly"], ua.MustVariant(int32(1)))
	if err != nil || st != ua.StatusBadUserAccessDenied {
		t.Fatalf("write read-only = %v, %v; want BadUserAccessDenied", st, err)
	}
	st, err = c.WriteValue(ctx, ua.NewStringNodeID(1, "missing"), ua.MustVariant(int32(1)))
	if err != nil || st != ua.StatusBadNodeIDUnknown {
		t.Fatalf("write missing = %v, %v; want BadNodeIdUnknown", st, err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err after Bad results: %v", err)
	}
}

// TestLimits runs against a server that enforces its MaxNodesPerRead.
func TestLimits(t *testing.T) {
	srv := newServer(t, rctest.Options{EnforceMaxNodesPerRead: true})
	const n = 3*rctest.MaxNodesPerRead + 5
	nodes := make([]*ua.NodeID, n)
	for i := range nodes {
		nodes[i] = srv.AddVariable(fmt.Sprintf("v%03d", i), int32(i), false)
	}
	c, _ := build(t, newFactory(t, rc.ClientConfig{}), srv)
	t.Run("ReadSplits", func(t *testing.T) { testReadSplits(t, srv, c, nodes) })
	t.Run("BadServiceResultKeepsConnection", func(t *testing.T) { testBadServiceResult(t, c) })
}

func testReadSplits(t *testing.T, srv *rctest.Server, c *rc.Client, nodes []*ua.NodeID) {
	n := len(nodes)
	before := srv.ReadCalls()
	dvs, err := c.ReadValues(ctxTimeout(t, 5*time.Second), nodes...)
	if err != nil {
		t.Fatal(err)
	}
	if calls := srv.ReadCalls() - before; calls != 4 {
		t.Errorf("%d Read calls for %d nodes, want 4", calls, n)
	}
	for i, dv := range dvs {
		if dv.Value == nil || dv.Value.Value() != int32(i) {
			t.Fatalf("result %d = %v, want %d (order lost?)", i, dv.Value, i)
		}
	}
}

func testBadServiceResult(t *testing.T, c *rc.Client) {
	ctx := ctxTimeout(t, 5*time.Second)

	// Unsplit on purpose: the server answers with a ServiceFault.
	req := &ua.ReadRequest{}
	for range rctest.MaxNodesPerRead + 1 {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}})
	}
	if _, err := rc.Send(ctx, c, req); !errors.Is(err, ua.StatusBadTooManyOperations) {
		t.Fatalf("oversized Read: %v, want BadTooManyOperations", err)
	}
	// gopcua's server does not implement HistoryRead.
	_, err := rc.Send(ctx, c, &ua.HistoryReadRequest{HistoryReadDetails: ua.NewExtensionObject(&ua.ReadRawModifiedDetails{}), NodesToRead: []*ua.HistoryReadValueID{{NodeID: ua.NewNumericNodeID(0, 2258), DataEncoding: &ua.QualifiedName{}}}})
	if !errors.Is(err, ua.StatusBadServiceUnsupported) {
		t.Fatalf("HistoryRead: %v, want BadServiceUnsupported", err)
	}
	if errors.Is(err, rc.ErrConnectionLost) {
		t.Fatal("a service result was reported as connection loss")
	}
	select {
	case <-c.Done():
		t.Fatalf("connection ended after Bad service results: %v", c.Err())
	default:
	}
	if _, err := c.ReadValues(ctx, ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime)); err != nil {
		t.Fatalf("Read after Bad service results: %v", err)
	}
}

func testCallMethod(t *testing.T, fx *fixture) {
	c, obj, add := fx.c, fx.calc, fx.add
	ctx := ctxTimeout(t, 5*time.Second)

	res, err := c.CallMethod(ctx, obj, add, ua.MustVariant(int32(40)), ua.MustVariant(int32(2)))
	if err != nil || res.StatusCode != ua.StatusOK || len(res.OutputArguments) != 1 || res.OutputArguments[0].Value() != int32(42) {
		t.Fatalf("Add(40, 2) = %+v, %v", res, err)
	}
	res, err = c.CallMethod(ctx, obj, add, ua.MustVariant("x"), ua.MustVariant(int32(2)))
	if err != nil || res.StatusCode != ua.StatusBadTypeMismatch {
		t.Fatalf("Add(\"x\", 2) = %+v, %v; want BadTypeMismatch", res, err)
	}
	res, err = c.CallMethod(ctx, obj, ua.NewStringNodeID(1, "nope"))
	if err != nil || res.StatusCode != ua.StatusBadMethodInvalid {
		t.Fatalf("unknown method = %+v, %v; want BadMethodInvalid", res, err)
	}
}

func testBrowse(t *testing.T, fx *fixture) {
	c, line, srv := fx.c, fx.line, fx.srv
	want := append([]string{"Speed"}, fx.tags...)
	ctx := ctxTimeout(t, 5*time.Second)
	desc := &ua.BrowseDescription{
		NodeID:          line,
		BrowseDirection: ua.BrowseDirectionForward,
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HasComponent),
		IncludeSubtypes: true,
		ResultMask:      uint32(ua.BrowseResultMaskAll),
	}
	names := func(refs []*ua.ReferenceDescription) []string {
		var out []string
		for _, r := range refs {
			out = append(out, r.BrowseName.Name)
		}
		return out
	}

	// Page by page with continuation points.
	res, err := c.Browse(ctx, &ua.BrowseRequest{RequestedMaxReferencesPerNode: 3, NodesToBrowse: []*ua.BrowseDescription{desc}})
	if err != nil {
		t.Fatal(err)
	}
	got := names(res.Results[0].References)
	cp := res.Results[0].ContinuationPoint
	for pages := 1; len(cp) > 0; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		next, err := c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{cp}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, names(next.Results[0].References)...)
		cp = next.Results[0].ContinuationPoint
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged browse = %q, want %q", got, want)
	}

	// Releasing a continuation point frees it on the server.
	res, err = c.Browse(ctx, &ua.BrowseRequest{RequestedMaxReferencesPerNode: 2, NodesToBrowse: []*ua.BrowseDescription{desc}})
	if err != nil || len(res.Results[0].ContinuationPoint) == 0 {
		t.Fatalf("browse: %v", err)
	}
	if _, err := c.BrowseNext(ctx, &ua.BrowseNextRequest{ReleaseContinuationPoints: true, ContinuationPoints: [][]byte{res.Results[0].ContinuationPoint}}); err != nil {
		t.Fatal(err)
	}
	if n := srv.PendingContinuationPoints(); n != 0 {
		t.Errorf("%d continuation points left on the server", n)
	}

	all, err := c.BrowseAll(ctx, desc)
	if err != nil || !slices.Equal(names(all), want) {
		t.Errorf("BrowseAll = %q, %v", names(all), err)
	}
	if _, err := c.BrowseAll(ctx, &ua.BrowseDescription{NodeID: ua.NewStringNodeID(1, "missing")}); !errors.Is(err, ua.StatusBadNodeIDUnknown) {
		t.Errorf("BrowseAll(missing) = %v, want BadNodeIdUnknown", err)
	}
}

func testResolveBrowsePath(t *testing.T, fx *fixture) {
	c, speed := fx.c, fx.speed
	ctx := ctxTimeout(t, 5*time.Second)

	ns, err := c.NamespaceIndex(fixtureNS)
	if err != nil {
		t.Fatal(err)
	}
	objects := ua.NewNumericNodeID(ns, id.ObjectsFolder)
	got, err := c.ResolveBrowsePath(ctx, objects, &ua.QualifiedName{NamespaceIndex: ns, Name: "Line1"}, &ua.QualifiedName{NamespaceIndex: ns, Name: "Speed"})
	if err != nil || !got.Equal(speed) {
		t.Fatalf("ResolveBrowsePath = %v, %v; want %v", got, err, speed)
	}
	_, err = c.ResolveBrowsePath(ctx, objects, &ua.QualifiedName{NamespaceIndex: ns, Name: "Line1"}, &ua.QualifiedName{NamespaceIndex: ns, Name: "Nope"})
	if !errors.Is(err, rc.ErrBrowsePath) || !errors.Is(err, ua.StatusBadNoMatch) {
		t.Fatalf("missing path: %v, want ErrBrowsePath wrapping BadNoMatch", err)
	}
}

func testNamespaceResolution(t *testing.T, fx *fixture) {
	c, speed := fx.c, fx.speed

	idx, err := c.NamespaceIndex(fixtureNS)
	if err != nil || idx != speed.Namespace() {
		t.Fatalf("NamespaceIndex = %d, %v", idx, err)
	}
	for _, s := range []string{"nsu=" + fixtureNS + ";s=Speed", "ns=1;s=Speed"} {
		if got, err := c.ParseNodeID(s); err != nil || !got.Equal(speed) {
			t.Errorf("ParseNodeID(%q) = %v, %v; want %v", s, got, err, speed)
		}
	}
	if got, err := c.ParseNodeID("nsu=" + fixtureNS + ";i=7"); err != nil || !got.Equal(ua.NewNumericNodeID(idx, 7)) {
		t.Errorf("numeric nsu id = %v, %v", got, err)
	}
	if _, err := c.ParseNodeID("nsu=urn:unknown;s=Speed"); !errors.Is(err, rc.ErrNamespaceUnknown) {
		t.Errorf("unknown namespace: %v, want ErrNamespaceUnknown", err)
	}
	if _, err := c.ParseNodeID("nsu=" + fixtureNS); err == nil {
		t.Error("nsu without identifier accepted")
	}
	for _, e := range []*ua.ExpandedNodeID{
		ua.NewExpandedNodeID(ua.NewStringNodeID(0, "Speed"), fixtureNS, 0),
		ua.NewExpandedNodeID(ua.NewStringNodeID(1, "Speed"), "", 0),
	} {
		if got, err := c.ResolveExpandedNodeID(e); err != nil || !got.Equal(speed) {
			t.Errorf("ResolveExpandedNodeID(%v) = %v, %v; want %v", e, got, err, speed)
		}
	}
	if got, err := c.ResolveExpandedNodeID(ua.NewExpandedNodeID(ua.NewTwoByteNodeID(7), fixtureNS, 0)); err != nil || !got.Equal(ua.NewNumericNodeID(idx, 7)) {
		t.Errorf("two-byte id with URI = %v, %v", got, err)
	}
	if _, err := c.ResolveExpandedNodeID(ua.NewExpandedNodeID(ua.NewNumericNodeID(0, 1), "", 3)); err == nil {
		t.Error("an ExpandedNodeId of another server was accepted")
	}
}

func testInvalidRequests(t *testing.T, fx *fixture) {
	ctx := ctxTimeout(t, 5*time.Second)
	c := fx.c
	cases := map[string]func() error{
		"Read without NodeId": func() error {
			_, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{}}})
			return err
		},
		"Write without DataValue": func() error {
			_, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: fx.ids["Int32"]}}})
			return err
		},
		"Write with a nil Variant": func() error {
			_, err := c.WriteValue(ctx, fx.ids["Int32"], nil)
			return err
		},
		"Call without MethodId": func() error {
			_, err := c.Call(ctx, &ua.CallRequest{MethodsToCall: []*ua.CallMethodRequest{{ObjectID: fx.calc}}})
			return err
		},
		"Browse without NodeId": func() error {
			_, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{{}}})
			return err
		},
		"Translate without RelativePath": func() error {
			_, err := c.TranslateBrowsePaths(ctx, &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: []*ua.BrowsePath{{StartingNode: fx.line}}})
			return err
		},
		"ResolveBrowsePath without start": func() error {
			_, err := c.ResolveBrowsePath(ctx, nil, &ua.QualifiedName{Name: "x"})
			return err
		},
	}
	for name, fn := range cases {
		if err := fn(); !errors.Is(err, rc.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended: %v", err)
	}
	// Nil View and ReferenceTypeId mean the defaults.
	res, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{{NodeID: fx.line, BrowseDirection: ua.BrowseDirectionForward}}})
	if err != nil || len(res.Results[0].References) < len(fx.tags) {
		t.Fatalf("Browse with defaults: %v, %v", res, err)
	}
}

// testConcurrentCalls runs reads, writes and calls from several goroutines
// on one session: requests are multiplexed on the channel.
func testConcurrentCalls(t *testing.T, fx *fixture) {
	ctx := ctxTimeout(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				v := int32(g*1000 + i)
				if st, err := fx.c.WriteValue(ctx, fx.ids["Int32"], ua.MustVariant(v)); err != nil || st != ua.StatusOK {
					errs <- fmt.Errorf("write: %v, %w", st, err)
					return
				}
				if _, err := fx.c.ReadValues(ctx, fx.ids["Int32"], fx.speed); err != nil {
					errs <- err
					return
				}
				res, err := fx.c.CallMethod(ctx, fx.calc, fx.add, ua.MustVariant(v), ua.MustVariant(int32(1)))
				if err != nil || res.OutputArguments[0].Value() != v+1 {
					errs <- fmt.Errorf("call: %v, %w", res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
