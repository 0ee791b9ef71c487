package rc

import (
	"context"
	"time"

	"github.com/gopcua/opcua/ua"
)

// ModifyRequest asks for new monitoring parameters of one monitored item.
// The fields mean what they mean in MonitorRequest; each replaces the
// item's current value (an event item keeps its EventFilter).
// Specification: Part 4, 5.12.3 and 7.21.
type ModifyRequest struct {
	// ClientHandle names the item (MonitoredItem.ClientHandle).
	ClientHandle     uint32
	SamplingInterval time.Duration
	QueueSize        uint32
	DiscardOldest    bool
	Filter           *DataChangeFilter
}

// ModifyItems changes the sampling interval, queue size, discard policy and
// filter of monitored items. Requests are batched by the server's
// MaxMonitoredItemsPerCall. Each item's outcome is reported in request
// order, like Monitor's: with a Good Status the item has the new parameters
// (and the server's revised sampling interval and queue size), with a Bad
// one (BadMonitoredItemIdInvalid, BadFilterNotAllowed, …) it keeps its
// previous ones. The subscription remembers the parameters: a subscription
// recreated after its session was lost gets its items back with them. An
// unknown client handle fails the whole call before anything is sent.
// Specification: Part 4, 5.12.3.
func (s *Subscription) ModifyItems(ctx context.Context, reqs ...ModifyRequest) ([]MonitoredItem, error) {
	s.mu.Lock()
	id, interval := s.id, s.params.PublishingInterval
	items := make([]MonitoredItem, len(reqs))
	modifies := make([]*ua.MonitoredItemModifyRequest, len(reqs))
	for i, r := range reqs {
		it, ok := s.items[r.ClientHandle]
		if !ok {
			s.mu.Unlock()
			return nil, invalid("ModifyRequest[%d]: no monitored item with client handle %d", i, r.ClientHandle)
		}
		if it.Request.EventFilter != nil && r.Filter != nil {
			s.mu.Unlock()
			return nil, invalid("ModifyRequest[%d]: a data change filter for the event item with client handle %d", i, r.ClientHandle)
		}
		items[i] = *it
		items[i].Request.SamplingInterval = r.SamplingInterval
		items[i].Request.QueueSize = r.QueueSize
		items[i].Request.DiscardOldest = r.DiscardOldest
		items[i].Request.Filter = r.Filter
		modifies[i] = &ua.MonitoredItemModifyRequest{
			MonitoredItemID:     it.ID,
			RequestedParameters: monitoringParameters(it.ClientHandle, items[i].Request, interval),
		}
	}
	s.mu.Unlock()
	res, _, err := splitCall(ctx, s.c, modifies, s.c.OperationLimits().MaxMonitoredItemsPerCall,
		func(batch []*ua.MonitoredItemModifyRequest) ua.Request {
			return &ua.ModifyMonitoredItemsRequest{SubscriptionID: id, TimestampsToReturn: ua.TimestampsToReturnBoth, ItemsToModify: batch}
		},
		func(r *ua.ModifyMonitoredItemsResponse) []*ua.MonitoredItemModifyResult { return r.Results })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range items {
		it := &items[i]
		r := res[i]
		if r == nil {
			it.Status = ua.StatusBadUnexpectedError
			continue
		}
		it.Status = r.StatusCode
		if isBad(it.Status) {
			continue
		}
		it.RevisedSamplingInterval = time.Duration(r.RevisedSamplingInterval * float64(time.Millisecond))
		it.RevisedQueueSize = r.RevisedQueueSize
		// Unless the subscription was recreated meanwhile (new ids; it
		// was recreated with the old parameters and keeps those).
		if cur, ok := s.items[it.ClientHandle]; ok && cur.ID == it.ID && s.id == id {
			*cur = *it
		}
	}
	return items, nil
}

// SetMonitoringMode sets the monitoring mode of the monitored items with
// the given client handles (Part 4, 7.19): Disabled stops sampling,
// Sampling samples and queues without reporting, Reporting reports again
// (and, per the spec, what was queued while sampling). Requests are batched
// by the server's MaxMonitoredItemsPerCall and each item's status is
// returned in order; an item with a Good status has the new mode, which is
// remembered: a subscription recreated after its session was lost gets its
// items back in their modes. An unknown client handle or mode fails the
// whole call before anything is sent. Specification: Part 4, 5.12.4.
func (s *Subscription) SetMonitoringMode(ctx context.Context, mode ua.MonitoringMode, handles ...uint32) ([]ua.StatusCode, error) {
	switch mode {
	case ua.MonitoringModeDisabled, ua.MonitoringModeSampling, ua.MonitoringModeReporting:
	default:
		return nil, invalid("monitoring mode %d unknown", uint32(mode))
	}
	id, ids, err := s.itemIDs(handles)
	if err != nil {
		return nil, err
	}
	res, _, err := splitCall(ctx, s.c, ids, s.c.OperationLimits().MaxMonitoredItemsPerCall,
		func(batch []uint32) ua.Request {
			return &ua.SetMonitoringModeRequest{SubscriptionID: id, MonitoringMode: mode, MonitoredItemIDs: batch}
		},
		func(r *ua.SetMonitoringModeResponse) []ua.StatusCode { return r.Results })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range handles {
		if cur, ok := s.items[h]; ok && !isBad(res[i]) && cur.ID == ids[i] && s.id == id {
			cur.Mode = mode
		}
	}
	return res, nil
}
