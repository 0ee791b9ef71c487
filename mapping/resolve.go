package mapping

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/gopcua/opcua/ua"
)

// Resolver is what Resolve needs from an OPC UA session. The rc client
// satisfies it; mapping itself does no I/O.
//
// Contract: both methods may block on the network and must return when ctx
// is done. Resolve calls them from one goroutine, at most once each per
// Resolve call. A returned error means the call itself failed (connection
// lost, service fault); per-path outcomes are reported in the results.
type Resolver interface {
	// NamespaceArray returns the value of the server's NamespaceArray
	// (Server_NamespaceArray, i=2255; Part 5, 6.3.1).
	NamespaceArray(ctx context.Context) ([]string, error)
	// TranslateBrowsePaths calls TranslateBrowsePathsToNodeIds (Part 4,
	// 5.8.4), splitting the request by the server's operation limits, and
	// returns exactly one result per path, in order.
	TranslateBrowsePaths(ctx context.Context, paths []*ua.BrowsePath) ([]*ua.BrowsePathResult, error)
}

// Resolution is the outcome of resolving one NodeRef in one session.
type Resolution struct {
	// NodeID is the node's id in this session; nil when Err is set.
	NodeID *ua.NodeID
	// Err says why the reference did not resolve. It wraps ErrNamespace or
	// ErrResolve, and the server's ua.StatusCode when there is one.
	Err error
}

// Resolve resolves refs in the session behind r: namespace URIs through the
// NamespaceArray (read once, only if needed) and browse paths through one
// TranslateBrowsePaths call. It returns one Resolution per ref, in order.
// The error is non-nil only when a Resolver call failed or broke its
// contract; per-reference problems are in the Resolutions.
func Resolve(ctx context.Context, r Resolver, refs []NodeRef) ([]Resolution, error) {
	out := make([]Resolution, len(refs))
	var namespaces []string
	needNS := false
	for _, ref := range refs {
		if ref.NeedsNamespaces() {
			needNS = true
			break
		}
	}
	if needNS {
		var err error
		if namespaces, err = r.NamespaceArray(ctx); err != nil {
			return nil, fmt.Errorf("mapping: reading NamespaceArray: %w", err)
		}
		if namespaces == nil {
			namespaces = []string{} // an empty array still means "read"
		}
	}

	var paths []*ua.BrowsePath
	var pathIdx []int
	for i, ref := range refs {
		switch {
		case ref.IsZero():
			out[i].Err = valueErr(ErrResolve, "", "no node reference")
		case ref.IsBrowsePath():
			bp, err := ref.BrowsePath(namespaces)
			if err != nil {
				out[i].Err = refErr(ref, err)
				continue
			}
			paths = append(paths, bp)
			pathIdx = append(pathIdx, i)
		default:
			id, err := ref.NodeID(namespaces)
			if err != nil {
				out[i].Err = refErr(ref, err)
				continue
			}
			out[i].NodeID = id
		}
	}
	if len(paths) == 0 {
		return out, nil
	}
	results, err := r.TranslateBrowsePaths(ctx, paths)
	if err != nil {
		return nil, fmt.Errorf("mapping: translating %d browse paths: %w", len(paths), err)
	}
	if len(results) != len(paths) {
		return nil, fmt.Errorf("%w: TranslateBrowsePaths returned %d results for %d paths", ErrResolve, len(results), len(paths))
	}
	for k, res := range results {
		i := pathIdx[k]
		out[i].NodeID, out[i].Err = pathTarget(refs[i], res, namespaces)
	}
	return out, nil
}

// refErr puts the reference in front of a namespace error.
func refErr(ref NodeRef, err error) error {
	return fmt.Errorf("%s: %w", quote(ref.String()), err)
}

// pathTarget picks the one fully resolved target of a browse path.
func pathTarget(ref NodeRef, res *ua.BrowsePathResult, namespaces []string) (*ua.NodeID, error) {
	text := ref.String()
	if res == nil {
		return nil, valueErr(ErrResolve, text, "no result from the server")
	}
	if res.StatusCode != ua.StatusOK {
		return nil, withStatus(valueErr(ErrResolve, text, "not resolved by the server: "+StatusName(res.StatusCode)), res.StatusCode)
	}
	var target *ua.ExpandedNodeID
	n := 0
	for _, t := range res.Targets {
		if t == nil || t.TargetID == nil || t.TargetID.NodeID == nil || t.RemainingPathIndex != math.MaxUint32 {
			continue
		}
		n++
		target = t.TargetID
	}
	switch {
	case n == 0:
		return nil, valueErr(ErrResolve, text, "the server returned no complete target")
	case n > 1:
		return nil, valueErr(ErrResolve, text, "ambiguous: the server returned "+itoa(int64(n))+" targets")
	case target.ServerIndex != 0:
		return nil, valueErr(ErrResolve, text, "the target is on another server")
	}
	id := ua.NewNodeIDFromExpandedNodeID(target)
	if target.NamespaceURI != "" {
		ns, err := namespaceIndex(target.NamespaceURI, namespaces)
		if err != nil {
			return nil, refErr(ref, err)
		}
		id = ua.NewNodeIDFromExpandedNodeID(target)
		if err := id.SetNamespace(ns); err != nil {
			return nil, valueErr(ErrResolve, text, "target namespace index does not fit its NodeId encoding")
		}
	}
	return id, nil
}

// statusError joins a ValueError with the server's status code, so that
// errors.Is(err, ErrResolve) and errors.As(err, &ua.StatusCode) both work.
type statusError struct {
	err    error
	status ua.StatusCode
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() []error { return []error{e.err, e.status} }

func withStatus(err error, sc ua.StatusCode) error { return &statusError{err: err, status: sc} }

// StatusName returns the symbolic name of a status code ("Good",
// "BadNodeIdUnknown"). Codes gopcua does not know are named by severity and
// hex value ("Bad_0x80AB0000"). Info bits in the low 16 bits are ignored for
// the lookup.
func StatusName(sc ua.StatusCode) string {
	if d, ok := ua.StatusCodes[sc&0xffff0000]; ok {
		return specName(strings.TrimPrefix(d.Name, "Status")) // gopcua: "StatusBadTimeout"
	}
	return severityName(sc) + "_0x" + fmt.Sprintf("%08X", uint32(sc))
}

func severityName(sc ua.StatusCode) string {
	switch {
	case sc&0x80000000 != 0:
		return "Bad"
	case sc&0x40000000 != 0:
		return "Uncertain"
	}
	return "Good"
}

// specName undoes gopcua's Go initialisms in status names, giving the names
// of Part 6, Annex A ("BadNodeIDUnknown" → "BadNodeIdUnknown",
// "BadTCPEndpointURLInvalid" → "BadTcpEndpointUrlInvalid"). Names without
// them are returned as they are, without allocating.
func specName(name string) string {
	if !strings.Contains(name, "ID") && !strings.Contains(name, "UR") && !strings.Contains(name, "TCP") {
		return name
	}
	r := strings.NewReplacer("ID", "Id", "URI", "Uri", "URL", "Url", "TCP", "Tcp")
	return r.Replace(name)
}
