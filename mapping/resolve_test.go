package mapping

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"
)

// addressSpace is a small in-memory address space that answers the two
// Resolver calls by actually walking its references, as a server does.
// (gopcua's own server answers TranslateBrowsePathsToNodeIds with
// BadServiceUnsupported, so there is no in-process server to use here; the
// rc and bridge tests resolve against node-opcua.)
type addressSpace struct {
	namespaces []string
	children   map[string][]child // parent NodeId text → children
	nsCalls    int
	trCalls    int
	failNS     error
	shortReply bool
}

type child struct {
	name   ua.QualifiedName
	target *ua.ExpandedNodeID
}

func (a *addressSpace) add(parent string, ns uint16, name string, target *ua.ExpandedNodeID) {
	if a.children == nil {
		a.children = map[string][]child{}
	}
	a.children[parent] = append(a.children[parent], child{ua.QualifiedName{NamespaceIndex: ns, Name: name}, target})
}

func (a *addressSpace) NamespaceArray(ctx context.Context) ([]string, error) {
	a.nsCalls++
	if a.failNS != nil {
		return nil, a.failNS
	}
	return a.namespaces, ctx.Err()
}

func (a *addressSpace) TranslateBrowsePaths(ctx context.Context, paths []*ua.BrowsePath) ([]*ua.BrowsePathResult, error) {
	a.trCalls++
	var out []*ua.BrowsePathResult
	for _, p := range paths {
		cur := []*ua.ExpandedNodeID{{NodeID: p.StartingNode}}
		for _, e := range p.RelativePath.Elements {
			var next []*ua.ExpandedNodeID
			for _, c := range cur {
				for _, ch := range a.children[c.NodeID.String()] {
					if ch.name == *e.TargetName {
						next = append(next, ch.target)
					}
				}
			}
			cur = next
		}
		res := &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
		if len(cur) > 0 {
			res.StatusCode = ua.StatusOK
			for _, c := range cur {
				res.Targets = append(res.Targets, &ua.BrowsePathTarget{TargetID: c, RemainingPathIndex: math.MaxUint32})
			}
		}
		out = append(out, res)
	}
	if a.shortReply {
		out = out[:len(out)-1]
	}
	return out, ctx.Err()
}

func newPlant() *addressSpace {
	a := &addressSpace{namespaces: []string{uaNamespace, "urn:local", "urn:plant"}}
	a.add("i=84", 0, "Objects", &ua.ExpandedNodeID{NodeID: ua.NewNumericNodeID(0, 85)})
	a.add("i=85", 2, "Line1", &ua.ExpandedNodeID{NodeID: ua.NewStringNodeID(2, "Line1")})
	a.add("ns=2;s=Line1", 2, "Speed", &ua.ExpandedNodeID{NodeID: ua.NewStringNodeID(2, "Line1.Speed")})
	// A target given with a namespace URI instead of an index.
	uriTarget := ua.NewExpandedNodeID(ua.NewStringNodeID(0, "Line1.Temp"), "urn:plant", 0)
	a.add("ns=2;s=Line1", 2, "Temp", uriTarget)
	// Two children with the same browse name.
	a.add("ns=2;s=Line1", 2, "Twin", &ua.ExpandedNodeID{NodeID: ua.NewNumericNodeID(2, 1)})
	a.add("ns=2;s=Line1", 2, "Twin", &ua.ExpandedNodeID{NodeID: ua.NewNumericNodeID(2, 2)})
	// A target on another server.
	remote := ua.NewExpandedNodeID(ua.NewNumericNodeID(2, 3), "", 4)
	a.add("ns=2;s=Line1", 2, "Remote", remote)
	return a
}

func mustRef(t *testing.T, s string) NodeRef {
	t.Helper()
	r, err := ParseNodeRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolve(t *testing.T) {
	a := newPlant()
	refs := []NodeRef{
		mustRef(t, "nsu=urn:plant;s=Line1.Speed"),
		mustRef(t, "ns=1;i=5"),
		mustRef(t, "/Objects/{urn:plant}Line1/2:Speed"),
		mustRef(t, "/Objects/2:Line1/2:Temp"),
		mustRef(t, "/Objects/2:Line1/2:Missing"),
		mustRef(t, "/Objects/2:Line1/2:Twin"),
		mustRef(t, "/Objects/2:Line1/2:Remote"),
		mustRef(t, "nsu=urn:unknown;i=1"),
		mustRef(t, "/Objects/{urn:unknown}X"),
		{},
	}
	res, err := Resolve(context.Background(), a, refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id  string
		err string
		is  error
	}{
		{id: "ns=2;s=Line1.Speed"},
		{id: "ns=1;i=5"},
		{id: "ns=2;s=Line1.Speed"},
		{id: "ns=2;s=Line1.Temp"},
		{err: `"/Objects/2:Line1/2:Missing": not resolved by the server: BadNoMatch`, is: ErrResolve},
		{err: "ambiguous: the server returned 2 targets", is: ErrResolve},
		{err: "the target is on another server", is: ErrResolve},
		{err: `"nsu=urn:unknown;i=1": "urn:unknown": namespace URI is not in the server's NamespaceArray`, is: ErrNamespace},
		{err: "namespace URI is not in the server's NamespaceArray", is: ErrNamespace},
		{err: "no node reference", is: ErrResolve},
	}
	for i, w := range want {
		got := res[i]
		if w.err == "" {
			if got.Err != nil || got.NodeID.String() != w.id {
				t.Errorf("%s: got %v, %v; want %s", refs[i], got.NodeID, got.Err, w.id)
			}
			continue
		}
		if got.Err == nil || !errors.Is(got.Err, w.is) || !strings.Contains(got.Err.Error(), w.err) {
			t.Errorf("%s: got error %v; want %v containing %q", refs[i], got.Err, w.is, w.err)
		}
	}
	var sc ua.StatusCode
	if !errors.As(res[4].Err, &sc) || sc != ua.StatusBadNoMatch {
		t.Errorf("status code not reachable with errors.As: %v", res[4].Err)
	}
	if a.nsCalls != 1 || a.trCalls != 1 {
		t.Errorf("calls: NamespaceArray %d, TranslateBrowsePaths %d; want 1 each", a.nsCalls, a.trCalls)
	}
}

func TestResolveCallsOnlyWhatIsNeeded(t *testing.T) {
	a := newPlant()
	res, err := Resolve(context.Background(), a, []NodeRef{mustRef(t, "ns=2;i=7"), mustRef(t, "i=85")})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatal(err, res)
	}
	if a.nsCalls != 0 || a.trCalls != 0 {
		t.Fatalf("index-only NodeIds made %d NamespaceArray and %d Translate calls", a.nsCalls, a.trCalls)
	}
}

func TestResolveCallErrors(t *testing.T) {
	boom := errors.New("connection lost")
	a := newPlant()
	a.failNS = boom
	if _, err := Resolve(context.Background(), a, []NodeRef{mustRef(t, "nsu=urn:plant;i=1")}); !errors.Is(err, boom) {
		t.Fatalf("NamespaceArray failure: %v", err)
	}
	a = newPlant()
	a.shortReply = true
	if _, err := Resolve(context.Background(), a, []NodeRef{mustRef(t, "/Objects")}); !errors.Is(err, ErrResolve) {
		t.Fatalf("short reply: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Resolve(ctx, newPlant(), []NodeRef{mustRef(t, "/Objects")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestStatusName(t *testing.T) {
	tests := []struct {
		sc   ua.StatusCode
		want string
	}{
		{ua.StatusOK, "Good"},
		{ua.StatusBad, "Bad"},
		{ua.StatusUncertain, "Uncertain"},
		{ua.StatusBadNodeIDUnknown, "BadNodeIdUnknown"},
		{ua.StatusBadTimeout | 0x0400, "BadTimeout"}, // info bits ignored
		{ua.StatusBadTCPEndpointURLInvalid, "BadTcpEndpointUrlInvalid"},
		{ua.StatusBadCertificateURIInvalid, "BadCertificateUriInvalid"},
		{0x83FF0000, "Bad_0x83FF0000"},
		{0x43FF0000, "Uncertain_0x43FF0000"},
		{0x03FF0000, "Good_0x03FF0000"},
	}
	for _, tt := range tests {
		if got := StatusName(tt.sc); got != tt.want {
			t.Errorf("StatusName(%#x) = %q, want %q", uint32(tt.sc), got, tt.want)
		}
	}
}
