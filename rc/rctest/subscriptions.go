package rctest

import (
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// gopcua's subscription services (v0.8.0) dereference the session of a
// request without checking that it exists, and DeleteMonitoredItems and
// SetMonitoringMode dereference unknown monitored items: a client with a
// stale session or item id crashes the whole server process. The handlers
// here answer such requests with an error instead; they change nothing for
// well-behaved requests.
//
// Left as gopcua does it: a subscription stays bound to the secure channel
// that created it (after that channel is gone it cannot publish, but it
// keeps its id until the client deletes it or its lifetime runs out), and
// new subscriptions get the id "number of subscriptions + 1", which can be
// the id of a live one once an older one is gone. So after a client moves
// its session to a new connection, Publish requests on the new one are
// never answered (the subscription answers on the old channel, fails and
// ends): the client's stall watchdog closes the new connection one
// keep-alive budget later. Resume tests that need publishing to go on use
// node-opcua.

// registerSubscriptionHandlers installs the guarded subscription handlers.
// gopcua's services exist only after Start, so the wrappers look them up
// at call time.
func (s *Server) registerSubscriptionHandlers() {
	subs := func() *server.SubscriptionService { return s.UA.SubscriptionService }
	items := func() *server.MonitoredItemService { return s.UA.MonitoredItemService }
	for typeID, h := range map[uint16]func() server.Handler{
		id.CreateSubscriptionRequest_Encoding_DefaultBinary:  func() server.Handler { return subs().CreateSubscription },
		id.DeleteSubscriptionsRequest_Encoding_DefaultBinary: func() server.Handler { return subs().DeleteSubscriptions },
		id.SetTriggeringRequest_Encoding_DefaultBinary:       func() server.Handler { return items().SetTriggering },
	} {
		s.UA.RegisterHandler(typeID, s.withSession(h))
	}
	for typeID, h := range map[uint16]func() server.Handler{
		id.CreateMonitoredItemsRequest_Encoding_DefaultBinary: func() server.Handler { return items().CreateMonitoredItems },
		id.ModifyMonitoredItemsRequest_Encoding_DefaultBinary: func() server.Handler { return s.modifyMonitoredItems },
		id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary: func() server.Handler { return s.deleteMonitoredItems },
		id.SetMonitoringModeRequest_Encoding_DefaultBinary:    func() server.Handler { return s.setMonitoringMode },
	} {
		s.UA.RegisterHandler(typeID, s.withSession(s.itemLimit(h)))
	}
}

// withSession answers a request of a session the server does not know with
// Bad_SessionIdInvalid instead of passing it to h.
func (s *Server) withSession(h func() server.Handler) server.Handler {
	return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		if hdr := r.Header(); hdr == nil || s.UA.Session(hdr) == nil {
			return nil, ua.StatusBadSessionIDInvalid
		}
		return h()(sc, r, reqID)
	}
}

// ownItem returns the monitored item itemID of subscription subID if it
// belongs to the session of hdr. The caller holds the service's Mu.
func (s *Server) ownItem(mis *server.MonitoredItemService, hdr *ua.RequestHeader, subID, itemID uint32) (*server.MonitoredItem, ua.StatusCode) {
	item, ok := mis.Items[itemID]
	if !ok || item == nil || item.Sub == nil || item.Sub.ID != subID {
		return nil, ua.StatusBadMonitoredItemIDInvalid
	}
	if item.Sub.Session != s.UA.Session(hdr) {
		return nil, ua.StatusBadSessionIDInvalid
	}
	return item, ua.StatusOK
}

// deleteMonitoredItems implements DeleteMonitoredItems. Specification:
// Part 4, 5.12.6.
func (s *Server) deleteMonitoredItems(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.DeleteMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	mis := s.UA.MonitoredItemService
	results := make([]ua.StatusCode, len(req.MonitoredItemIDs))
	var doomed []uint32
	mis.Mu.Lock()
	for i, itemID := range req.MonitoredItemIDs {
		if _, results[i] = s.ownItem(mis, req.RequestHeader, req.SubscriptionID, itemID); results[i] == ua.StatusOK {
			doomed = append(doomed, itemID)
		}
	}
	mis.Mu.Unlock()
	for _, itemID := range doomed {
		mis.DeleteMonitoredItem(itemID)
	}
	return &ua.DeleteMonitoredItemsResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// setMonitoringMode implements SetMonitoringMode (gopcua records the mode
// and otherwise ignores it; Changed honours it). Specification: Part 4,
// 5.12.4.
func (s *Server) setMonitoringMode(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.SetMonitoringModeRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	mis := s.UA.MonitoredItemService
	results := make([]ua.StatusCode, len(req.MonitoredItemIDs))
	mis.Mu.Lock()
	for i, itemID := range req.MonitoredItemIDs {
		var item *server.MonitoredItem
		if item, results[i] = s.ownItem(mis, req.RequestHeader, req.SubscriptionID, itemID); item != nil {
			item.Mode = req.MonitoringMode
			item.Req.MonitoringMode = req.MonitoringMode // what Changed and MonitoredItems go by
		}
	}
	mis.Mu.Unlock()
	return &ua.SetMonitoringModeResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// stopSubscriptions deletes every subscription, ending its goroutine.
func (s *Server) stopSubscriptions() {
	ss := s.UA.SubscriptionService
	if ss == nil {
		return
	}
	ss.Mu.Lock()
	ids := make([]uint32, 0, len(ss.Subs))
	for subID := range ss.Subs {
		ids = append(ids, subID)
	}
	ss.Mu.Unlock()
	for _, subID := range ids {
		ss.DeleteSubscription(subID)
	}
}
