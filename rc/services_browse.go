package rc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// ErrBrowsePath is wrapped when a browse path does not resolve to exactly
// one node.
var ErrBrowsePath = errors.New("rc: browse path did not resolve")

// maxBrowsePages bounds BrowseAll against a server that hands out
// continuation points forever.
const maxBrowsePages = 10000

// Browse browses references. Specification: Part 4, 5.8.2.
//
// Requests are split by the server's MaxNodesPerBrowse; results are in
// request order. Results with a ContinuationPoint need BrowseNext (or use
// BrowseAll). req is not modified.
func (c *Client) Browse(ctx context.Context, req *ua.BrowseRequest) (*ua.BrowseResponse, error) {
	descs, err := browseDescriptions(req.NodesToBrowse)
	if err != nil {
		return nil, err
	}
	view := viewDescription(req.View)
	res, hdr, err := splitCall(ctx, c, descs, c.OperationLimits().MaxNodesPerBrowse,
		func(batch []*ua.BrowseDescription) ua.Request {
			return &ua.BrowseRequest{View: view, RequestedMaxReferencesPerNode: req.RequestedMaxReferencesPerNode, NodesToBrowse: batch}
		},
		func(r *ua.BrowseResponse) []*ua.BrowseResult { return r.Results })
	if err != nil {
		return nil, err
	}
	return &ua.BrowseResponse{ResponseHeader: hdr, Results: res}, nil
}

// BrowseNext continues or releases browses. Specification: Part 4, 5.8.3.
// Requests are split by MaxNodesPerBrowse like Browse.
func (c *Client) BrowseNext(ctx context.Context, req *ua.BrowseNextRequest) (*ua.BrowseNextResponse, error) {
	res, hdr, err := splitCall(ctx, c, req.ContinuationPoints, c.OperationLimits().MaxNodesPerBrowse,
		func(batch [][]byte) ua.Request {
			return &ua.BrowseNextRequest{ReleaseContinuationPoints: req.ReleaseContinuationPoints, ContinuationPoints: batch}
		},
		func(r *ua.BrowseNextResponse) []*ua.BrowseResult { return r.Results })
	if err != nil {
		return nil, err
	}
	return &ua.BrowseNextResponse{ResponseHeader: hdr, Results: res}, nil
}

// BrowseAll browses one node and follows continuation points until every
// reference is returned. A Bad browse status is returned as an error
// wrapping the ua.StatusCode. On error, a pending continuation point is
// released.
func (c *Client) BrowseAll(ctx context.Context, desc *ua.BrowseDescription) ([]*ua.ReferenceDescription, error) {
	if desc == nil {
		return nil, invalid("nil BrowseDescription")
	}
	res, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{desc}})
	if err != nil {
		return nil, err
	}
	var refs []*ua.ReferenceDescription
	r := res.Results[0]
	for page := 0; ; page++ {
		if r == nil {
			return nil, fmt.Errorf("%w: Browse returned a nil result", ErrUnexpectedResponse)
		}
		if isBad(r.StatusCode) {
			return nil, fmt.Errorf("rc: Browse %s: %w", desc.NodeID, r.StatusCode)
		}
		refs = append(refs, r.References...)
		if len(r.ContinuationPoint) == 0 {
			return refs, nil
		}
		if page == maxBrowsePages || ctx.Err() != nil {
			c.releaseContinuationPoint(r.ContinuationPoint)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("rc: Browse %s: %w", desc.NodeID, ctx.Err())
			}
			return nil, fmt.Errorf("%w: Browse %s: more than %d pages", ErrUnexpectedResponse, desc.NodeID, maxBrowsePages)
		}
		next, err := c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{r.ContinuationPoint}})
		if err != nil {
			c.releaseContinuationPoint(r.ContinuationPoint)
			return nil, err
		}
		r = next.Results[0]
	}
}

// releaseContinuationPoint frees a continuation point on the server, best
// effort, with a fresh short deadline: the caller's context may be done.
func (c *Client) releaseContinuationPoint(cp []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	_, _ = c.BrowseNext(ctx, &ua.BrowseNextRequest{ReleaseContinuationPoints: true, ContinuationPoints: [][]byte{cp}})
}

// TranslateBrowsePaths resolves browse paths to node ids. Specification:
// Part 4, 5.8.4. Requests are split by the server's
// MaxNodesPerTranslateBrowsePathsToNodeIds; results are in request order.
func (c *Client) TranslateBrowsePaths(ctx context.Context, req *ua.TranslateBrowsePathsToNodeIDsRequest) (*ua.TranslateBrowsePathsToNodeIDsResponse, error) {
	paths, err := browsePaths(req.BrowsePaths)
	if err != nil {
		return nil, err
	}
	res, hdr, err := splitCall(ctx, c, paths, c.OperationLimits().MaxNodesPerTranslateBrowsePathsToNodeIDs,
		func(batch []*ua.BrowsePath) ua.Request {
			return &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: batch}
		},
		func(r *ua.TranslateBrowsePathsToNodeIDsResponse) []*ua.BrowsePathResult { return r.Results })
	if err != nil {
		return nil, err
	}
	return &ua.TranslateBrowsePathsToNodeIDsResponse{ResponseHeader: hdr, Results: res}, nil
}

// ResolveBrowsePath follows names from start along hierarchical references
// (forward, subtypes included) and returns the node it reaches. It fails
// with ErrBrowsePath when the path matches no node or several, or names a
// node on another server.
func (c *Client) ResolveBrowsePath(ctx context.Context, start *ua.NodeID, names ...*ua.QualifiedName) (*ua.NodeID, error) {
	elems := make([]*ua.RelativePathElement, len(names))
	for i, n := range names {
		elems[i] = &ua.RelativePathElement{
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
			IncludeSubtypes: true,
			TargetName:      n,
		}
	}
	res, err := c.TranslateBrowsePaths(ctx, &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: []*ua.BrowsePath{{
		StartingNode: start,
		RelativePath: &ua.RelativePath{Elements: elems},
	}}})
	if err != nil {
		return nil, err
	}
	r := res.Results[0]
	path := formatPath(start, names)
	switch {
	case r == nil:
		return nil, fmt.Errorf("%w: TranslateBrowsePathsToNodeIds returned a nil result", ErrUnexpectedResponse)
	case isBad(r.StatusCode):
		return nil, fmt.Errorf("%w: %s: %w", ErrBrowsePath, path, r.StatusCode)
	case len(r.Targets) != 1:
		return nil, fmt.Errorf("%w: %s: %d targets, want 1", ErrBrowsePath, path, len(r.Targets))
	}
	t := r.Targets[0]
	if t == nil || t.TargetID == nil || t.TargetID.HasServerIndex() || t.RemainingPathIndex != ^uint32(0) {
		return nil, fmt.Errorf("%w: %s: target not on this server or path incomplete", ErrBrowsePath, path)
	}
	return c.ResolveExpandedNodeID(t.TargetID)
}

func formatPath(start *ua.NodeID, names []*ua.QualifiedName) string {
	var b strings.Builder
	b.WriteString(start.String())
	for _, n := range names {
		fmt.Fprintf(&b, "/%d:%s", n.NamespaceIndex, n.Name)
	}
	return strconv.Quote(b.String())
}
