package rctest

import (
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// Dynamic variables hold values owned by the caller, a simulation for
// example: the server reads them through a ReadFunc on every Read and change
// notification and hands client writes to a WriteFunc that checks them.
// gopcua's own Write would replace the node's value without a type check and
// without a lock, racing with concurrent reads.

// ReadFunc returns the current value of a dynamic variable. It is called
// concurrently from the server's goroutines and must be safe for that.
type ReadFunc func() *ua.DataValue

// WriteFunc stores a value a client wrote to a dynamic variable and returns
// the result of the write: Good, or a Bad status such as Bad_TypeMismatch or
// Bad_OutOfRange, in which case nothing may change. It is called
// concurrently and must be safe for that.
type WriteFunc func(v *ua.Variant) ua.StatusCode

// AddDynamicVariable adds a variable named name whose value read returns,
// and returns its node id ("ns=1;s=<name>"). With a nil parent it is
// organized under the test namespace's Objects folder, otherwise it is a
// HasComponent child of parent. Its DataType and ValueRank are taken from
// the first value read returns (which must not be empty); write, if not
// nil, makes it writable. Call Changed after the value changed so that
// subscriptions see it.
func (s *Server) AddDynamicVariable(parent *ua.NodeID, name string, read ReadFunc, write WriteFunc) *ua.NodeID {
	first := read().Value
	rank := int32(-1)
	if first.ArrayLength() > 0 || len(first.ArrayDimensions()) > 0 {
		rank = int32(max(len(first.ArrayDimensions()), 1))
	}
	nid := ua.NewStringNodeID(s.NS.ID(), name)
	n := s.addNode(nid, ua.NodeClassVariable, name, variableAttrs(first.Type(), rank, write != nil), server.ValueFunc(read))
	if parent == nil {
		s.NS.Objects().AddRef(n, id.Organizes, true)
	} else {
		s.parent(parent).AddRef(n, id.HasComponent, true)
	}
	s.mu.Lock()
	s.writers[nid.String()] = write
	s.mu.Unlock()
	return nid
}

// write answers Write requests: dynamic variables through their WriteFunc,
// other nodes as gopcua's own Write does. Specification: Part 4, 5.10.4.
func (s *Server) write(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]ua.StatusCode, len(req.NodesToWrite))
	for i, wv := range req.NodesToWrite {
		results[i] = s.writeOne(wv)
	}
	return &ua.WriteResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

func (s *Server) writeOne(wv *ua.WriteValue) ua.StatusCode {
	if wv == nil || wv.NodeID == nil {
		return ua.StatusBadNodeIDInvalid
	}
	s.mu.Lock()
	fn, dynamic := s.writers[wv.NodeID.String()]
	s.mu.Unlock()
	if !dynamic {
		ns := s.namespace(wv.NodeID)
		if ns == nil {
			return ua.StatusBadNodeIDUnknown
		}
		return ns.SetAttribute(wv.NodeID, wv.AttributeID, wv.Value)
	}
	switch {
	case wv.AttributeID != ua.AttributeIDValue:
		return ua.StatusBadNotWritable
	case fn == nil:
		return ua.StatusBadUserAccessDenied // what gopcua answers for read-only nodes
	case wv.IndexRange != "":
		return ua.StatusBadWriteNotSupported
	case wv.Value == nil || wv.Value.Value == nil:
		return ua.StatusBadTypeMismatch
	}
	if st := fn(wv.Value.Value); st != ua.StatusOK {
		return st
	}
	s.Changed(wv.NodeID)
	return ua.StatusOK
}
