package rctest

import (
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// MaxNodesPerRead is the limit gopcua's server advertises in its
// OperationLimits; Options.EnforceMaxNodesPerRead enforces it.
const MaxNodesPerRead = 32

// registerHandlers installs our service handlers; gopcua keeps handlers
// registered before Start.
func (s *Server) registerHandlers() {
	s.UA.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, s.read)
	s.UA.RegisterHandler(id.CallRequest_Encoding_DefaultBinary, s.call)
	s.UA.RegisterHandler(id.BrowseRequest_Encoding_DefaultBinary, s.browseFirst)
	s.UA.RegisterHandler(id.BrowseNextRequest_Encoding_DefaultBinary, s.browseNext)
	s.UA.RegisterHandler(id.TranslateBrowsePathsToNodeIDsRequest_Encoding_DefaultBinary, s.translate)
	s.UA.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, s.write)
	s.registerSubscriptionHandlers()
}

func responseHeader(req *ua.RequestHeader, status ua.StatusCode) *ua.ResponseHeader {
	var handle uint32
	if req != nil {
		handle = req.RequestHandle
	}
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      handle,
		ServiceResult:      status,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

func badValue(status ua.StatusCode) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: status}
}

func (s *Server) namespace(n *ua.NodeID) server.NameSpace {
	if n == nil {
		return nil
	}
	ns, err := s.UA.Namespace(int(n.Namespace()))
	if err != nil {
		return nil
	}
	return ns
}

func (s *Server) read(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	s.reads.Add(1)
	if s.opts.EnforceMaxNodesPerRead && len(req.NodesToRead) > MaxNodesPerRead {
		return nil, ua.StatusBadTooManyOperations
	}
	results := make([]*ua.DataValue, len(req.NodesToRead))
	for i, rv := range req.NodesToRead {
		if s.opts.MaxMonitoredItemsPerCall > 0 && rv.NodeID.Equal(maxItemsPerCallNode) && rv.AttributeID == ua.AttributeIDValue {
			results[i] = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(s.opts.MaxMonitoredItemsPerCall)}
			continue
		}
		ns := s.namespace(rv.NodeID)
		if ns == nil {
			results[i] = badValue(ua.StatusBadNodeIDUnknown)
			continue
		}
		results[i] = ns.Attribute(rv.NodeID, rv.AttributeID)
	}
	return &ua.ReadResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

func (s *Server) call(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.CallRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]*ua.CallMethodResult, len(req.MethodsToCall))
	for i, m := range req.MethodsToCall {
		s.mu.Lock()
		fn := s.methods[m.ObjectID.String()+"|"+m.MethodID.String()]
		s.mu.Unlock()
		if fn == nil {
			results[i] = &ua.CallMethodResult{StatusCode: ua.StatusBadMethodInvalid}
			continue
		}
		out, status := fn(m.InputArguments)
		results[i] = &ua.CallMethodResult{StatusCode: status, OutputArguments: out}
	}
	return &ua.CallResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// browsePager keeps the references that did not fit in a Browse response,
// keyed by continuation point.
type browsePager struct {
	mu      sync.Mutex
	next    uint64
	pending map[string]pendingBrowse
}

type pendingBrowse struct {
	refs []*ua.ReferenceDescription
	max  int
}

func newBrowsePager() *browsePager {
	return &browsePager{pending: make(map[string]pendingBrowse)}
}

// page cuts refs to max and stores the rest under a new continuation point.
func (p *browsePager) page(refs []*ua.ReferenceDescription, max int) *ua.BrowseResult {
	res := &ua.BrowseResult{StatusCode: ua.StatusGood, References: refs}
	if max <= 0 || len(refs) <= max {
		return res
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	cp := binary.LittleEndian.AppendUint64(nil, p.next)
	p.pending[string(cp)] = pendingBrowse{refs: refs[max:], max: max}
	res.References, res.ContinuationPoint = refs[:max], cp
	return res
}

func (p *browsePager) take(cp []byte) (pendingBrowse, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pb, ok := p.pending[string(cp)]
	delete(p.pending, string(cp))
	return pb, ok
}

// Pending returns how many continuation points are held.
func (s *Server) PendingContinuationPoints() int {
	s.browse.mu.Lock()
	defer s.browse.mu.Unlock()
	return len(s.browse.pending)
}

func (s *Server) browseOne(bd *ua.BrowseDescription) *ua.BrowseResult {
	ns := s.namespace(bd.NodeID)
	if ns == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	return ns.Browse(bd)
}

func (s *Server) browseFirst(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.BrowseRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]*ua.BrowseResult, len(req.NodesToBrowse))
	for i, bd := range req.NodesToBrowse {
		res := s.browseOne(bd)
		if res.StatusCode == ua.StatusGood {
			res = s.browse.page(res.References, int(req.RequestedMaxReferencesPerNode))
		}
		results[i] = res
	}
	return &ua.BrowseResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

func (s *Server) browseNext(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.BrowseNextRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]*ua.BrowseResult, len(req.ContinuationPoints))
	for i, cp := range req.ContinuationPoints {
		pb, ok := s.browse.take(cp)
		switch {
		case !ok:
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadContinuationPointInvalid}
		case req.ReleaseContinuationPoints:
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusGood}
		default:
			results[i] = s.browse.page(pb.refs, pb.max)
		}
	}
	return &ua.BrowseNextResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// translate follows each relative path by browse name, taking the first
// match at each step. Specification: Part 4, 5.8.4.
func (s *Server) translate(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.TranslateBrowsePathsToNodeIDsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]*ua.BrowsePathResult, len(req.BrowsePaths))
	for i, bp := range req.BrowsePaths {
		results[i] = s.translateOne(bp)
	}
	return &ua.TranslateBrowsePathsToNodeIDsResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

func (s *Server) translateOne(bp *ua.BrowsePath) *ua.BrowsePathResult {
	if bp == nil || bp.StartingNode == nil || bp.RelativePath == nil || len(bp.RelativePath.Elements) == 0 {
		return &ua.BrowsePathResult{StatusCode: ua.StatusBadNothingToDo}
	}
	cur := bp.StartingNode
	for _, el := range bp.RelativePath.Elements {
		if el == nil || el.TargetName == nil {
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadBrowseNameInvalid}
		}
		res := s.browseOne(&ua.BrowseDescription{
			NodeID:          cur,
			BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: el.ReferenceTypeID,
			IncludeSubtypes: el.IncludeSubtypes,
			ResultMask:      uint32(ua.BrowseResultMaskAll),
		})
		var next *ua.NodeID
		for _, ref := range res.References {
			if ref.BrowseName != nil && ref.NodeID != nil &&
				ref.BrowseName.Name == el.TargetName.Name && ref.BrowseName.NamespaceIndex == el.TargetName.NamespaceIndex {
				next = ref.NodeID.NodeID
				break
			}
		}
		if next == nil {
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
		}
		cur = next
	}
	return &ua.BrowsePathResult{
		StatusCode: ua.StatusGood,
		Targets:    []*ua.BrowsePathTarget{{TargetID: ua.NewExpandedNodeID(cur, "", 0), RemainingPathIndex: math.MaxUint32}},
	}
}
