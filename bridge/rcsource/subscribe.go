package rcsource

import (
	"context"
	"fmt"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc"
)

// maxEvents bounds the gap and recreated events waiting for the
// forwarder. They are rare (a gap, a recreated subscription per resume);
// the queue holds pointers, so its buffer costs 2 KiB per session, not 10.
const maxEvents = 256

// Subscribe implements bridge.Client: rc's Subscribe and Monitor. The
// bridge's client handles are mapped to the ones rc assigns.
func (c *client) Subscribe(ctx context.Context, spec bridge.SubscriptionSpec) (uint32, []ua.StatusCode, error) {
	sub, err := c.c.Subscribe(ctx, rc.SubscriptionParams{PublishingInterval: spec.PublishingInterval})
	if err != nil {
		return 0, nil, err
	}
	reqs := make([]rc.MonitorRequest, len(spec.Items))
	for i, it := range spec.Items {
		reqs[i] = monitorRequest(it)
	}
	items, err := sub.Monitor(ctx, reqs...)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = sub.Delete(dctx)
		cancel()
		return 0, nil, err
	}
	if len(items) != len(spec.Items) {
		return 0, nil, fmt.Errorf("rcsource: %d monitored items for %d requests: %w", len(items), len(spec.Items), rc.ErrUnexpectedResponse)
	}
	statuses := make([]ua.StatusCode, len(items))
	c.mu.Lock()
	for i, it := range items {
		statuses[i] = it.Status
		h := int(it.ClientHandle)
		if h >= len(c.handles) {
			c.handles = append(c.handles, make([]uint32, h+1-len(c.handles))...)
		}
		c.handles[h] = spec.Items[i].Handle + 1 // 0 means unknown
	}
	c.mu.Unlock()
	return sub.ID(), statuses, nil
}

// monitorRequest turns the bridge's item into rc's request: sampling 0
// means the publishing interval (rc: negative), mapping.SampleFastest the
// fastest rate (rc: 0); the oldest queued value is discarded.
func monitorRequest(it bridge.MonitoredItem) rc.MonitorRequest {
	r := rc.MonitorRequest{NodeID: it.Node, SamplingInterval: it.SamplingInterval, QueueSize: max(it.QueueSize, 1), DiscardOldest: true}
	switch r.SamplingInterval {
	case 0:
		r.SamplingInterval = -1
	case mapping.SampleFastest:
		r.SamplingInterval = 0
	}
	if it.Deadband.Kind != mapping.DeadbandNone {
		r.Filter = &rc.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue,
			DeadbandType: ua.DeadbandType(it.Deadband.Kind), DeadbandValue: it.Deadband.Value}
	}
	return r
}

// Notifications implements bridge.Client. The first call starts the
// forwarder, which converts rc's notifications and publish engine events;
// the bridge calls it once its subscriptions exist, so every client handle
// is known by then.
func (c *client) Notifications() <-chan bridge.Notification {
	c.fwdOnce.Do(func() { c.wg.Go(c.forward) })
	return c.out
}

// event queues a gap or recreated event for the forwarder; it runs on rc's
// goroutines and must not block.
func (c *client) event(ev rc.ClientEvent) {
	select {
	case c.events <- &ev:
	default:
		c.src.log.Error("publish engine event dropped: queue full", "server_uri", c.uri, "event", ev.Kind.String(), "subscription", ev.SubscriptionID)
	}
}

// forward converts rc's notifications into the bridge's until the client
// closes. Events queued before a notification are forwarded before it.
func (c *client) forward() {
	in := c.c.Notifications()
	held := make(map[uint32]rc.ClientEvent) // gaps up to an unknown end, waiting for their recreate
	for {
		select {
		case <-c.stop:
			return
		case ev := <-c.events:
			if !c.forwardEvent(*ev, held) {
				return
			}
		case n, ok := <-in:
			if !ok {
				return
			}
			for drained := false; !drained; {
				select {
				case ev := <-c.events:
					if !c.forwardEvent(*ev, held) {
						return
					}
				default:
					drained = true
				}
			}
			if !c.send(c.convert(n)) {
				return
			}
		}
	}
}

// convert turns an rc notification into the bridge's.
func (c *client) convert(n *rc.Notification) bridge.Notification {
	if n.Status != ua.StatusOK && n.Status != 0 {
		c.src.log.Warn("subscription status changed", "server_uri", c.uri, "subscription", n.SubscriptionID, "status", n.Status)
	}
	out := bridge.Notification{Subscription: n.SubscriptionID, Sequence: n.SequenceNumber, PublishTime: n.PublishTime,
		Republished: n.Republished, Ack: n.Ack, Changes: make([]bridge.DataChange, 0, len(n.DataChanges))}
	c.mu.Lock()
	for _, dc := range n.DataChanges {
		h := uint32(0)
		if int(dc.ClientHandle) < len(c.handles) {
			h = c.handles[dc.ClientHandle]
		}
		if h == 0 {
			c.src.log.Debug("data change for an unknown client handle dropped", "server_uri", c.uri, "handle", dc.ClientHandle)
			continue
		}
		out.Changes = append(out.Changes, bridge.DataChange{Handle: h - 1, Value: dc.Value})
	}
	c.mu.Unlock()
	return out
}

// forwardEvent turns a publish engine event into a gap notification. A gap
// up to an unknown end (the session was lost) is held until the event
// saying the subscription was recreated, so that one gap reports both.
func (c *client) forwardEvent(ev rc.ClientEvent, held map[uint32]rc.ClientEvent) bool {
	switch ev.Kind {
	case rc.PublishGap:
		if ev.LastLost == 0 {
			held[ev.SubscriptionID] = ev
			return true
		}
		return c.send(bridge.Notification{Subscription: ev.SubscriptionID,
			Lost: bridge.Gap{From: ev.FirstLost, To: ev.LastLost, Reason: "messages no longer available for republish"}})
	case rc.PublishRecreated:
		g := bridge.Gap{Recreated: true, Reason: fmt.Sprintf("the server lost the session; subscription recreated as %d", ev.NewSubscriptionID)}
		if h, ok := held[ev.SubscriptionID]; ok {
			g.From = h.FirstLost
			delete(held, ev.SubscriptionID)
		}
		return c.send(bridge.Notification{Subscription: ev.SubscriptionID, Lost: g})
	}
	return true
}

// send hands n to the bridge unless the client closes first.
func (c *client) send(n bridge.Notification) bool {
	select {
	case c.out <- n:
		return true
	case <-c.stop:
		return false
	}
}
