package rc

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Defaults of SubscriptionParams.
const (
	DefaultPublishingInterval = time.Second
	DefaultKeepAliveCount     = 10
	// DefaultSubscriptionLifetime is how long a subscription should outlive
	// a silent client (no Publish requests): long enough to resume on the
	// server's next reverse connection. It sets the default LifetimeCount.
	DefaultSubscriptionLifetime = 10 * time.Minute
)

// SubscriptionParams are the requested parameters of a subscription; the
// server may revise them. Specification: Part 4, 5.13.2.
type SubscriptionParams struct {
	// PublishingInterval is the cycle at which the server sends
	// notifications. Default DefaultPublishingInterval.
	PublishingInterval time.Duration
	// KeepAliveCount is how many publishing intervals may pass without
	// notifications before the server sends a keep-alive. Default
	// DefaultKeepAliveCount.
	KeepAliveCount uint32
	// LifetimeCount is how many publishing intervals without a Publish
	// request the subscription survives. Default: DefaultSubscriptionLifetime
	// worth, at least three times KeepAliveCount (the spec's minimum).
	LifetimeCount uint32
	// MaxNotificationsPerPublish caps the notifications in one
	// NotificationMessage; 0 means no limit.
	MaxNotificationsPerPublish uint32
	// Priority orders this subscription's notifications against the
	// session's other subscriptions.
	Priority uint8
}

func (p SubscriptionParams) withDefaults() SubscriptionParams {
	if p.PublishingInterval <= 0 {
		p.PublishingInterval = DefaultPublishingInterval
	}
	if p.KeepAliveCount == 0 {
		p.KeepAliveCount = DefaultKeepAliveCount
	}
	if p.LifetimeCount == 0 {
		n := DefaultSubscriptionLifetime / p.PublishingInterval
		p.LifetimeCount = uint32(min(n, math.MaxUint32))
	}
	p.LifetimeCount = max(p.LifetimeCount, 3*p.KeepAliveCount)
	return p
}

// keepAliveBudget is the longest the server may stay silent on a healthy
// subscription: one keep-alive period.
func (p SubscriptionParams) keepAliveBudget() time.Duration {
	return p.PublishingInterval * time.Duration(p.KeepAliveCount)
}

// DataChangeFilter is a monitored item's data change filter. Specification:
// Part 4, 7.22.2.
type DataChangeFilter struct {
	// Trigger says which changes are reported: status, status and value
	// (the server's default), or also the source timestamp.
	Trigger ua.DataChangeTrigger
	// DeadbandType is ua.DeadbandTypeNone, Absolute or Percent.
	DeadbandType ua.DeadbandType
	// DeadbandValue is the deadband: in the value's unit (Absolute) or in
	// percent of the EURange (Percent).
	DeadbandValue float64
}

// MonitorRequest asks for one monitored item. Specification: Part 4,
// 5.12.2 and 7.21 (MonitoringParameters).
type MonitorRequest struct {
	NodeID *ua.NodeID
	// AttributeID defaults to Value.
	AttributeID ua.AttributeID
	// SamplingInterval: 0 asks for the fastest rate (every change, for
	// exception-based servers); negative means the publishing interval.
	SamplingInterval time.Duration
	// QueueSize is the server-side queue of this item's changes between
	// publishes; 0 or 1 keeps only the latest.
	QueueSize uint32
	// DiscardOldest drops the oldest queued change when the queue is full
	// (the newest otherwise).
	DiscardOldest bool
	// Filter is an optional data change filter.
	Filter *DataChangeFilter
	// EventFilter, if set, makes this an event monitored item: NodeID is
	// an object whose EventNotifier attribute is monitored (AttributeID
	// defaults to EventNotifier), and the events arrive in
	// Notification.Events with the fields the filter selects (see
	// SelectEventFields). Filter must then be nil. Specification: Part 4,
	// 7.22.3.
	EventFilter *ua.EventFilter
}

// MonitoredItem is the outcome of one MonitorRequest, in request order.
type MonitoredItem struct {
	// ClientHandle identifies the item in notifications (DataChange).
	ClientHandle uint32
	// ID is the server's MonitoredItemId; 0 when Status is Bad.
	ID uint32
	// Request is what was asked for.
	Request MonitorRequest
	// Status is the item's result, for example BadNodeIdUnknown or
	// BadTooManyMonitoredItems; a Bad item is not monitored.
	Status                  ua.StatusCode
	RevisedSamplingInterval time.Duration
	RevisedQueueSize        uint32
	// Mode is the item's monitoring mode (Part 4, 7.19): Reporting unless
	// changed by SetMonitoringMode.
	Mode ua.MonitoringMode
}

// Subscription is a subscription of the client's session. Its
// notifications arrive on Client.Notifications. Methods are safe for
// concurrent use.
type Subscription struct {
	c *Client

	mu     sync.Mutex
	id     uint32
	params SubscriptionParams // as revised by the server
	items  map[uint32]*MonitoredItem
}

// ID returns the server's SubscriptionId. It changes when a subscription is
// recreated after its session was lost.
func (s *Subscription) ID() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Acknowledged returns the highest sequence number of this subscription
// acknowledged to the server (0 before the first): its Notification was
// acked by the consumer and the acknowledgement went out with a Publish
// request (Part 4, 5.13.5). It lags Notification.Ack until the engine's
// next Publish request; an acknowledgement on a request that failed is sent
// again. It starts over when the subscription is recreated.
func (s *Subscription) Acknowledged() uint32 {
	return s.c.publisher().acknowledged(s.ID())
}

// Params returns the parameters as revised by the server.
func (s *Subscription) Params() SubscriptionParams {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.params
}

// Items returns the monitored items (those with a Good status), in client
// handle order.
func (s *Subscription) Items() []MonitoredItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MonitoredItem, 0, len(s.items))
	for _, it := range s.items {
		out = append(out, *it)
	}
	slices.SortFunc(out, func(a, b MonitoredItem) int { return int(a.ClientHandle) - int(b.ClientHandle) })
	return out
}

// Subscribe creates a subscription and starts the publish engine.
// Specification: Part 4, 5.13.2.
func (c *Client) Subscribe(ctx context.Context, p SubscriptionParams) (*Subscription, error) {
	p = p.withDefaults()
	res, err := call[*ua.CreateSubscriptionResponse](ctx, c, createSubscriptionRequest(p))
	if err != nil {
		return nil, err
	}
	s := &Subscription{c: c, id: res.SubscriptionID, items: make(map[uint32]*MonitoredItem)}
	s.params = revised(p, res)
	c.publisher().add(s)
	return s, nil
}

func createSubscriptionRequest(p SubscriptionParams) *ua.CreateSubscriptionRequest {
	return &ua.CreateSubscriptionRequest{
		RequestedPublishingInterval: float64(p.PublishingInterval) / float64(time.Millisecond),
		RequestedLifetimeCount:      p.LifetimeCount,
		RequestedMaxKeepAliveCount:  p.KeepAliveCount,
		MaxNotificationsPerPublish:  p.MaxNotificationsPerPublish,
		PublishingEnabled:           true,
		Priority:                    p.Priority,
	}
}

func revised(p SubscriptionParams, res *ua.CreateSubscriptionResponse) SubscriptionParams {
	if res.RevisedPublishingInterval > 0 {
		p.PublishingInterval = time.Duration(res.RevisedPublishingInterval * float64(time.Millisecond))
	}
	if res.RevisedMaxKeepAliveCount > 0 {
		p.KeepAliveCount = res.RevisedMaxKeepAliveCount
	}
	if res.RevisedLifetimeCount > 0 {
		p.LifetimeCount = res.RevisedLifetimeCount
	}
	return p
}

// Monitor creates monitored items. Requests are batched by the server's
// MaxMonitoredItemsPerCall. Each item's outcome is reported in request
// order; a partial failure (BadNodeIdUnknown, BadTooManyMonitoredItems, …)
// is in that item's Status, never dropped. The error is for the calls as a
// whole. Specification: Part 4, 5.12.2.
func (s *Subscription) Monitor(ctx context.Context, reqs ...MonitorRequest) ([]MonitoredItem, error) {
	c := s.c
	s.mu.Lock()
	id, interval := s.id, s.params.PublishingInterval
	s.mu.Unlock()
	items := make([]*MonitoredItem, len(reqs))
	creates := make([]*ua.MonitoredItemCreateRequest, len(reqs))
	for i, r := range reqs {
		if r.NodeID == nil {
			return nil, invalid("MonitorRequest[%d] has no NodeId", i)
		}
		if r.EventFilter != nil && r.Filter != nil {
			return nil, invalid("MonitorRequest[%d] has both a data change and an event filter", i)
		}
		switch {
		case r.AttributeID != 0:
		case r.EventFilter != nil:
			r.AttributeID = ua.AttributeIDEventNotifier
		default:
			r.AttributeID = ua.AttributeIDValue
		}
		items[i] = &MonitoredItem{ClientHandle: c.nextHandle(), Request: r, Mode: ua.MonitoringModeReporting}
		creates[i] = createRequest(items[i], interval)
	}
	res, err := c.createItems(ctx, id, creates)
	if err != nil {
		return nil, err
	}
	out := make([]MonitoredItem, len(items))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, it := range items {
		applyResult(it, res[i])
		if !isBad(it.Status) {
			s.items[it.ClientHandle] = it
		}
		out[i] = *it
	}
	return out, nil
}

// createItems runs CreateMonitoredItems in batches of the server's
// MaxMonitoredItemsPerCall.
func (c *Client) createItems(ctx context.Context, sub uint32, creates []*ua.MonitoredItemCreateRequest) ([]*ua.MonitoredItemCreateResult, error) {
	res, _, err := splitCall(ctx, c, creates, c.OperationLimits().MaxMonitoredItemsPerCall,
		func(batch []*ua.MonitoredItemCreateRequest) ua.Request {
			return &ua.CreateMonitoredItemsRequest{SubscriptionID: sub, TimestampsToReturn: ua.TimestampsToReturnBoth, ItemsToCreate: batch}
		},
		func(r *ua.CreateMonitoredItemsResponse) []*ua.MonitoredItemCreateResult { return r.Results })
	return res, err
}

// createRequest asks for it with its request's parameters, in its mode.
func createRequest(it *MonitoredItem, publishing time.Duration) *ua.MonitoredItemCreateRequest {
	r := it.Request
	return &ua.MonitoredItemCreateRequest{
		ItemToMonitor:       &ua.ReadValueID{NodeID: r.NodeID, AttributeID: r.AttributeID, DataEncoding: &ua.QualifiedName{}},
		MonitoringMode:      it.Mode,
		RequestedParameters: monitoringParameters(it.ClientHandle, r, publishing),
	}
}

// monitoringParameters are r's parameters for the item with client handle
// h. Specification: Part 4, 7.21.
func monitoringParameters(h uint32, r MonitorRequest, publishing time.Duration) *ua.MonitoringParameters {
	sampling := float64(r.SamplingInterval) / float64(time.Millisecond)
	if r.SamplingInterval < 0 {
		sampling = float64(publishing) / float64(time.Millisecond)
	}
	params := &ua.MonitoringParameters{
		ClientHandle:     h,
		SamplingInterval: sampling,
		QueueSize:        r.QueueSize,
		DiscardOldest:    r.DiscardOldest,
		Filter:           ua.NewExtensionObject(nil),
	}
	switch f := r.Filter; {
	case f != nil:
		params.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{Trigger: f.Trigger, DeadbandType: uint32(f.DeadbandType), DeadbandValue: f.DeadbandValue})
	case r.EventFilter != nil:
		params.Filter = ua.NewExtensionObject(r.EventFilter)
	}
	return params
}

func applyResult(it *MonitoredItem, r *ua.MonitoredItemCreateResult) {
	if r == nil {
		it.Status = ua.StatusBadUnexpectedError
		return
	}
	it.Status, it.ID, it.RevisedQueueSize = r.StatusCode, r.MonitoredItemID, r.RevisedQueueSize
	it.RevisedSamplingInterval = time.Duration(r.RevisedSamplingInterval * float64(time.Millisecond))
}

// Unmonitor deletes monitored items by client handle and returns each
// one's status. Specification: Part 4, 5.12.6.
func (s *Subscription) Unmonitor(ctx context.Context, handles ...uint32) ([]ua.StatusCode, error) {
	id, ids, err := s.itemIDs(handles)
	if err != nil {
		return nil, err
	}
	res, _, err := splitCall(ctx, s.c, ids, s.c.OperationLimits().MaxMonitoredItemsPerCall,
		func(batch []uint32) ua.Request {
			return &ua.DeleteMonitoredItemsRequest{SubscriptionID: id, MonitoredItemIDs: batch}
		},
		func(r *ua.DeleteMonitoredItemsResponse) []ua.StatusCode { return r.Results })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range handles {
		if !isBad(res[i]) || res[i] == ua.StatusBadMonitoredItemIDInvalid {
			delete(s.items, h)
		}
	}
	return res, nil
}

// itemIDs returns the subscription's id and the MonitoredItemIds of the
// items with the given client handles.
func (s *Subscription) itemIDs(handles []uint32) (uint32, []uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint32, len(handles))
	for i, h := range handles {
		it, ok := s.items[h]
		if !ok {
			return 0, nil, invalid("no monitored item with client handle %d", h)
		}
		ids[i] = it.ID
	}
	return s.id, ids, nil
}

// Modify changes the subscription's parameters. Specification: Part 4,
// 5.13.3.
func (s *Subscription) Modify(ctx context.Context, p SubscriptionParams) error {
	p = p.withDefaults()
	res, err := call[*ua.ModifySubscriptionResponse](ctx, s.c, &ua.ModifySubscriptionRequest{
		SubscriptionID:              s.ID(),
		RequestedPublishingInterval: float64(p.PublishingInterval) / float64(time.Millisecond),
		RequestedLifetimeCount:      p.LifetimeCount,
		RequestedMaxKeepAliveCount:  p.KeepAliveCount,
		MaxNotificationsPerPublish:  p.MaxNotificationsPerPublish,
		Priority:                    p.Priority,
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.params = revised(p, &ua.CreateSubscriptionResponse{
		RevisedPublishingInterval: res.RevisedPublishingInterval,
		RevisedLifetimeCount:      res.RevisedLifetimeCount,
		RevisedMaxKeepAliveCount:  res.RevisedMaxKeepAliveCount,
	})
	return nil
}

// Delete deletes the subscription on the server. Notifications already
// queued for the consumer are still delivered. Specification: Part 4,
// 5.13.8.
func (s *Subscription) Delete(ctx context.Context) error {
	id := s.ID()
	s.c.publisher().remove(id)
	res, err := call[*ua.DeleteSubscriptionsResponse](ctx, s.c, &ua.DeleteSubscriptionsRequest{SubscriptionIDs: []uint32{id}})
	if err != nil {
		return err
	}
	if len(res.Results) != 1 {
		return fmt.Errorf("%w: DeleteSubscriptions returned %d results", ErrUnexpectedResponse, len(res.Results))
	}
	if st := res.Results[0]; isBad(st) && st != ua.StatusBadSubscriptionIDInvalid {
		return fmt.Errorf("rc: DeleteSubscriptions %d: %w", id, st)
	}
	return nil
}
