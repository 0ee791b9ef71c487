package rc

import (
	"context"
	"errors"
	"fmt"

	"github.com/gopcua/opcua/ua"
)

// batched runs op over items in batches of at most limit items (0: no
// limit) and concatenates the results in order. Every batch must return
// exactly one result per item. If the server answers BadTooManyOperations
// although the batch respected its advertised limit (or it advertised
// none), the batch is halved and retried.
//
// Batches run one after the other, each with the caller's ctx.
func batched[T, R any](ctx context.Context, c *Client, items []T, limit uint32,
	op func(ctx context.Context, batch []T) ([]R, error)) ([]R, error) {
	size := len(items)
	if limit > 0 && uint64(limit) < uint64(size) {
		size = int(limit)
	}
	if size == len(items) { // the common case: one call, no copying
		res, err := op(ctx, items)
		if err == nil && len(res) != len(items) {
			err = fmt.Errorf("%w: %d results for %d operations", ErrUnexpectedResponse, len(res), len(items))
		}
		if err == nil || !errors.Is(err, ua.StatusBadTooManyOperations) || len(items) < 2 {
			return res, err
		}
		size = len(items) / 2
		c.log.Debug("server rejected batch size, halving", "size", len(items), "limit", limit)
	}
	out := make([]R, 0, len(items))
	for lo := 0; lo < len(items); {
		hi := min(lo+size, len(items))
		res, err := op(ctx, items[lo:hi])
		if errors.Is(err, ua.StatusBadTooManyOperations) && hi-lo > 1 {
			size = (hi - lo) / 2
			c.log.Debug("server rejected batch size, halving", "size", hi-lo, "limit", limit)
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(res) != hi-lo {
			return nil, fmt.Errorf("%w: %d results for %d operations", ErrUnexpectedResponse, len(res), hi-lo)
		}
		out = append(out, res...)
		lo = hi
	}
	return out, nil
}

// splitCall sends one request per batch of items (see batched) and returns
// the concatenated results with the last response's header.
func splitCall[T, R any, Resp ua.Response](ctx context.Context, c *Client, items []T, limit uint32,
	request func(batch []T) ua.Request, results func(Resp) []R) ([]R, *ua.ResponseHeader, error) {
	var hdr *ua.ResponseHeader
	res, err := batched(ctx, c, items, limit, func(ctx context.Context, batch []T) ([]R, error) {
		r, err := call[Resp](ctx, c, request(batch))
		if err != nil {
			return nil, err
		}
		hdr = r.Header()
		return results(r), nil
	})
	return res, hdr, err
}

// Read reads attributes. Specification: Part 4, 5.10.2.
//
// Requests with more nodes than the server's MaxNodesPerRead are split into
// several Read calls; the response carries all results in request order and
// the ResponseHeader of the last call. An AttributeID of 0 means Value. req
// is not modified. Per-node failures (BadNodeIdUnknown, BadUserAccessDenied,
// ...) are in each DataValue's Status; the error is for the call as a whole.
func (c *Client) Read(ctx context.Context, req *ua.ReadRequest) (*ua.ReadResponse, error) {
	nodes, err := readValueIDs(req.NodesToRead)
	if err != nil {
		return nil, err
	}
	res, hdr, err := splitCall(ctx, c, nodes, c.OperationLimits().MaxNodesPerRead,
		func(batch []*ua.ReadValueID) ua.Request {
			return &ua.ReadRequest{MaxAge: req.MaxAge, TimestampsToReturn: req.TimestampsToReturn, NodesToRead: batch}
		},
		func(r *ua.ReadResponse) []*ua.DataValue { return r.Results })
	if err != nil {
		return nil, err
	}
	return &ua.ReadResponse{ResponseHeader: hdr, Results: res}, nil
}

// ReadValues reads the Value attribute of nodes, with source and server
// timestamps.
func (c *Client) ReadValues(ctx context.Context, nodes ...*ua.NodeID) ([]*ua.DataValue, error) {
	return c.ReadAttributes(ctx, ua.AttributeIDValue, nodes...)
}

// ReadAttributes reads one attribute of each node.
func (c *Client) ReadAttributes(ctx context.Context, attr ua.AttributeID, nodes ...*ua.NodeID) ([]*ua.DataValue, error) {
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth, NodesToRead: make([]*ua.ReadValueID, len(nodes))}
	enc := &ua.QualifiedName{} // the default encoding, shared
	for i, n := range nodes {
		req.NodesToRead[i] = &ua.ReadValueID{NodeID: n, AttributeID: attr, DataEncoding: enc}
	}
	res, err := c.Read(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Results, nil
}

// Write writes attributes. Specification: Part 4, 5.10.4.
//
// Requests are split by the server's MaxNodesPerWrite like Read. Per-node
// outcomes (Good, BadNotWritable, BadTypeMismatch, BadUserAccessDenied, ...)
// are in Results, in request order. req is not modified.
func (c *Client) Write(ctx context.Context, req *ua.WriteRequest) (*ua.WriteResponse, error) {
	nodes, err := writeValues(req.NodesToWrite)
	if err != nil {
		return nil, err
	}
	res, hdr, err := splitCall(ctx, c, nodes, c.OperationLimits().MaxNodesPerWrite,
		func(batch []*ua.WriteValue) ua.Request { return &ua.WriteRequest{NodesToWrite: batch} },
		func(r *ua.WriteResponse) []ua.StatusCode { return r.Results })
	if err != nil {
		return nil, err
	}
	return &ua.WriteResponse{ResponseHeader: hdr, Results: res}, nil
}

// WriteValue writes the Value attribute of one node and returns the node's
// status code. The error is for the call; a Bad status such as
// BadNotWritable is returned as the status with a nil error.
func (c *Client) WriteValue(ctx context.Context, node *ua.NodeID, v *ua.Variant) (ua.StatusCode, error) {
	res, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      node,
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
	}}})
	if err != nil {
		return 0, err
	}
	return res.Results[0], nil
}

// Call calls methods. Specification: Part 4, 5.11.2.
//
// Requests are split by the server's MaxNodesPerMethodCall. Per-method
// outcomes are in Results, in request order. req is not modified.
func (c *Client) Call(ctx context.Context, req *ua.CallRequest) (*ua.CallResponse, error) {
	if err := checkMethods(req.MethodsToCall); err != nil {
		return nil, err
	}
	res, hdr, err := splitCall(ctx, c, req.MethodsToCall, c.OperationLimits().MaxNodesPerMethodCall,
		func(batch []*ua.CallMethodRequest) ua.Request { return &ua.CallRequest{MethodsToCall: batch} },
		func(r *ua.CallResponse) []*ua.CallMethodResult { return r.Results })
	if err != nil {
		return nil, err
	}
	return &ua.CallResponse{ResponseHeader: hdr, Results: res}, nil
}

// CallMethod calls one method of object with args and returns its result.
// The method's own outcome is in the result's StatusCode and
// InputArgumentResults; the error is for the call.
func (c *Client) CallMethod(ctx context.Context, object, method *ua.NodeID, args ...*ua.Variant) (*ua.CallMethodResult, error) {
	res, err := c.Call(ctx, &ua.CallRequest{MethodsToCall: []*ua.CallMethodRequest{{
		ObjectID:       object,
		MethodID:       method,
		InputArguments: args,
	}}})
	if err != nil {
		return nil, err
	}
	if res.Results[0] == nil {
		return nil, fmt.Errorf("%w: Call returned a nil result", ErrUnexpectedResponse)
	}
	return res.Results[0], nil
}

// isBad reports whether s has severity Bad. Specification: Part 4, 7.39.
func isBad(s ua.StatusCode) bool { return uint32(s)&0x80000000 != 0 }
