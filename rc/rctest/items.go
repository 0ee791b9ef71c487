package rctest

import (
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// maxItemsPerCallNode is the OperationLimits variable that
// Options.MaxMonitoredItemsPerCall answers for.
var maxItemsPerCallNode = ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)

// MonitoredItem is a monitored item as the server holds it, for tests that
// check what a client asked for.
type MonitoredItem struct {
	ID             uint32
	SubscriptionID uint32
	NodeID         *ua.NodeID
	Mode           ua.MonitoringMode
	// Parameters are the requested ones (gopcua's server revises nothing
	// but reports the publishing interval as the sampling interval).
	Parameters *ua.MonitoringParameters
}

// MonitoredItems returns the server's monitored items, of every session.
func (s *Server) MonitoredItems() []MonitoredItem {
	mis := s.UA.MonitoredItemService
	mis.Mu.Lock()
	defer mis.Mu.Unlock()
	out := make([]MonitoredItem, 0, len(mis.Items))
	for _, it := range mis.Items {
		if it == nil || it.Req == nil || it.Sub == nil {
			continue
		}
		out = append(out, MonitoredItem{ID: it.ID, SubscriptionID: it.Sub.ID, NodeID: it.Req.ItemToMonitor.NodeID,
			Mode: it.Req.MonitoringMode, Parameters: it.Req.RequestedParameters})
	}
	return out
}

// ItemCalls returns how many CreateMonitoredItems, ModifyMonitoredItems,
// SetMonitoringMode and DeleteMonitoredItems requests the server answered.
func (s *Server) ItemCalls() int { return int(s.itemCalls.Load()) }

// itemLimit counts the calls of h and enforces
// Options.MaxMonitoredItemsPerCall.
func (s *Server) itemLimit(h func() server.Handler) func() server.Handler {
	return func() server.Handler {
		return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
			s.itemCalls.Add(1)
			n := 0
			switch req := r.(type) {
			case *ua.CreateMonitoredItemsRequest:
				n = len(req.ItemsToCreate)
			case *ua.ModifyMonitoredItemsRequest:
				n = len(req.ItemsToModify)
			case *ua.SetMonitoringModeRequest:
				n = len(req.MonitoredItemIDs)
			case *ua.DeleteMonitoredItemsRequest:
				n = len(req.MonitoredItemIDs)
			}
			if limit := s.opts.MaxMonitoredItemsPerCall; limit > 0 && n > int(limit) {
				return nil, ua.StatusBadTooManyOperations
			}
			return h()(sc, r, reqID)
		}
	}
}

// modifyMonitoredItems implements ModifyMonitoredItems (gopcua answers
// BadServiceUnsupported): it records the new parameters and revises the
// sampling interval to the subscription's publishing interval, as gopcua's
// CreateMonitoredItems does, and the queue size to at least 1.
// Specification: Part 4, 5.12.3.
func (s *Server) modifyMonitoredItems(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.ModifyMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if len(req.ItemsToModify) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	mis := s.UA.MonitoredItemService
	results := make([]*ua.MonitoredItemModifyResult, len(req.ItemsToModify))
	mis.Mu.Lock()
	for i, m := range req.ItemsToModify {
		res := &ua.MonitoredItemModifyResult{FilterResult: ua.NewExtensionObject(nil)}
		results[i] = res
		if m == nil || m.RequestedParameters == nil {
			res.StatusCode = ua.StatusBadMonitoredItemIDInvalid
			continue
		}
		item, st := s.ownItem(mis, req.RequestHeader, req.SubscriptionID, m.MonitoredItemID)
		if res.StatusCode = st; item == nil {
			continue
		}
		if f := m.RequestedParameters.Filter; f != nil && f.Value != nil {
			switch f.Value.(type) {
			case *ua.DataChangeFilter, *ua.EventFilter:
			default:
				res.StatusCode = ua.StatusBadMonitoredItemFilterUnsupported
				continue
			}
		}
		item.Req.RequestedParameters = m.RequestedParameters
		res.RevisedSamplingInterval = item.Sub.RevisedPublishingInterval
		res.RevisedQueueSize = max(m.RequestedParameters.QueueSize, 1)
	}
	mis.Mu.Unlock()
	return &ua.ModifyMonitoredItemsResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// Changed tells the server that the value of node changed: every monitored
// item on it in Reporting mode gets a notification carrying the value read
// now. (Writes to variables made with AddVariable notify through gopcua,
// which reports to items in any mode.)
func (s *Server) Changed(node *ua.NodeID) {
	mis := s.UA.MonitoredItemService
	ns := s.namespace(node)
	mis.Mu.Lock()
	defer mis.Mu.Unlock()
	for _, item := range mis.Nodes[node.String()] {
		if item == nil || item.Req == nil || item.Sub == nil || item.Req.MonitoringMode != ua.MonitoringModeReporting {
			continue
		}
		val := &ua.MonitoredItemNotification{ClientHandle: item.Req.RequestedParameters.ClientHandle, Value: badValue(ua.StatusBadNodeIDUnknown)}
		if ns != nil {
			val.Value = ns.Attribute(node, item.Req.ItemToMonitor.AttributeID)
		}
		select { // as gopcua does, but never forever: a dead subscription stops reading
		case item.Sub.NotifyChannel <- val:
		case <-time.After(time.Second):
		}
	}
}
