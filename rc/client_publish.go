package rc

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"
)

// ErrStalled is the cause recorded when the stall watchdog closes a
// connection: no PublishResponse, not even a keep-alive, arrived within the
// subscriptions' keep-alive budget.
var ErrStalled = errors.New("rc: server stalled: no publish response within the keep-alive budget")

// Defaults of the publish engine.
const (
	DefaultPublishRequests   = 3
	DefaultNotificationQueue = 64
	// gapWait is how long a detected gap waits for the missing message,
	// usually on its way in another response, before asking for Republish.
	gapWait = 500 * time.Millisecond
)

// DataChange is one monitored item's new value.
type DataChange struct {
	ClientHandle uint32
	Value        *ua.DataValue
}

// Notification is one NotificationMessage of a subscription. Messages of a
// subscription are delivered in sequence-number order, each exactly once,
// across dropped connections and Resume. Call Ack once the notification is
// safely delivered: only then is it acknowledged to the server, which keeps
// it for Republish until then. Specification: Part 4, 5.13.1.
type Notification struct {
	SubscriptionID uint32
	SequenceNumber uint32
	PublishTime    time.Time
	DataChanges    []DataChange
	// Events are the events of event monitored items (MonitorRequest.
	// EventFilter), in the server's order.
	Events []EventFields
	// Status is a subscription status change (Part 4, 7.20.4), for example
	// BadTimeout when the server dropped the subscription; Good otherwise.
	Status ua.StatusCode
	// Republished is set when the message came from Republish after a
	// connection loss.
	Republished bool

	pub   *publisher
	acked atomic.Bool
}

// Ack acknowledges the notification to the server with the next Publish
// request. Calling it again does nothing.
func (n *Notification) Ack() {
	if n.acked.Swap(true) || n.pub == nil {
		return
	}
	n.pub.ack(n.SubscriptionID, n.SequenceNumber)
}

// Notifications returns the channel on which the notifications of all the
// client's subscriptions arrive. It is closed by Close. The engine holds
// back further Publish requests while ClientConfig.NotificationQueue
// messages wait for the consumer, so a slow consumer costs latency, not
// data.
func (c *Client) Notifications() <-chan *Notification {
	return c.publisher().out
}

// publisher is the client's publish engine: PublishRequests workers keep
// Publish requests outstanding, responses are reordered and deduplicated
// per subscription, delivered through a bounded queue, and acknowledged
// after the consumer acks them. A watchdog detects a stalled server; after a
// channel change a sync pass republishes what was missed.
type publisher struct {
	c   *Client
	out chan *Notification

	ctx  context.Context // cancelled by stop
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu           sync.Mutex
	cond         *sync.Cond // workers and gap fillers wait on it
	syncCond     *sync.Cond // the syncer waits on it
	deliverCond  *sync.Cond // the deliverer waits on it
	subs         map[uint32]*subState
	acks         []*ua.SubscriptionAcknowledgement
	queue        []*Notification
	delivering   bool // the deliverer holds a notification it took from queue
	queueCap     int
	nextReq      uint64
	inflight     map[uint64]bool
	lastResponse time.Time
	syncNeeded   bool          // publishing waits for a sync pass
	syncOutcome  ResumeOutcome // what the pending sync pass is for; 0: none pending
	syncGen      uint64        // counts channel changes
	stopped      bool
}

// subState is the delivery state of one subscription.
type subState struct {
	sub     *Subscription
	next    uint32 // next sequence number to deliver
	pending map[uint32]*Notification
	last    map[uint32]*lastValue // last value delivered, by client handle
	filling bool                  // a worker is filling a gap
	acked   uint32                // highest sequence number sent to the server as acknowledged
}

func newSubState(s *Subscription) *subState {
	return &subState{sub: s, next: 1, pending: make(map[uint32]*Notification), last: make(map[uint32]*lastValue)}
}

// lastValue is the last value delivered for a monitored item.
type lastValue struct{ v *ua.DataValue }

// enqueue queues n for the consumer, in order; p.mu held.
//
// A value that repeats the item's last delivered one in every field (value,
// status, both timestamps) is dropped: servers may report a change again in
// the message after one that was in flight when a connection dropped
// (node-opcua 2.186 does), and with the default data change trigger a
// report without any change cannot be a new sample.
func (p *publisher) enqueue(st *subState, n *Notification) {
	kept := n.DataChanges[:0]
	for _, dc := range n.DataChanges {
		last := st.last[dc.ClientHandle]
		if last == nil {
			last = new(lastValue)
			st.last[dc.ClientHandle] = last
		} else if sameDataValue(last.v, dc.Value) {
			p.c.log.Debug("dropped a repeated value", "subscription", n.SubscriptionID, "seq", n.SequenceNumber, "handle", dc.ClientHandle)
			continue
		}
		last.v = dc.Value
		kept = append(kept, dc)
	}
	n.DataChanges = kept
	if len(p.queue) == 0 && !p.delivering && !p.stopped {
		// Nothing is ahead of n: hand it over at once if the consumer is
		// waiting, saving the deliverer a wake-up. out is closed only
		// after stopped was set, under p.mu.
		select {
		case p.out <- n:
			return
		default:
		}
	}
	p.queue = append(p.queue, n)
	p.deliverCond.Signal()
}

func sameDataValue(a, b *ua.DataValue) bool {
	if a == nil || b == nil {
		return false
	}
	if !a.SourceTimestamp.Equal(b.SourceTimestamp) || !a.ServerTimestamp.Equal(b.ServerTimestamp) ||
		a.SourcePicoseconds != b.SourcePicoseconds || a.ServerPicoseconds != b.ServerPicoseconds ||
		a.Status != b.Status || a.EncodingMask != b.EncodingMask {
		return false
	}
	if a.Value == nil || b.Value == nil {
		return a.Value == b.Value
	}
	av, bv := a.Value.Value(), b.Value.Value()
	// reflect.DeepEqual is == for these; skip its reflection.
	switch x := av.(type) {
	case bool:
		return equalTo(x, bv)
	case int8:
		return equalTo(x, bv)
	case uint8:
		return equalTo(x, bv)
	case int16:
		return equalTo(x, bv)
	case uint16:
		return equalTo(x, bv)
	case int32:
		return equalTo(x, bv)
	case uint32:
		return equalTo(x, bv)
	case int64:
		return equalTo(x, bv)
	case uint64:
		return equalTo(x, bv)
	case float32:
		return equalTo(x, bv)
	case float64:
		return equalTo(x, bv)
	case string:
		return equalTo(x, bv)
	}
	return reflect.DeepEqual(av, bv)
}

// equalTo reports whether b holds a T equal to a.
func equalTo[T comparable](a T, b any) bool {
	v, ok := b.(T)
	return ok && v == a
}

// publisher returns the client's publish engine, starting it on first use.
func (c *Client) publisher() *publisher {
	c.pubOnce.Do(func() {
		p := &publisher{
			c:        c,
			out:      make(chan *Notification),
			subs:     make(map[uint32]*subState),
			inflight: make(map[uint64]bool),
			queueCap: c.cfg.NotificationQueue,
		}
		p.cond = sync.NewCond(&p.mu)
		p.syncCond = sync.NewCond(&p.mu)
		p.deliverCond = sync.NewCond(&p.mu)
		p.ctx, p.stop = context.WithCancel(context.Background())
		p.lastResponse = time.Now()
		c.lifeMu.Lock() // Close shuts the engine down under lifeMu
		defer c.lifeMu.Unlock()
		c.pub.Store(p)
		if c.closed.Load() {
			p.stopped = true
			p.stop()
			close(p.out)
			return
		}
		for range c.cfg.PublishRequests {
			p.wg.Go(p.worker)
		}
		p.wg.Go(p.deliverer)
		p.wg.Go(p.watchdog)
		p.wg.Go(p.syncer)
	})
	return c.pub.Load()
}

// shutdown stops the engine and waits for its goroutines; Notifications is
// closed once the consumer has taken what was queued or the engine stopped.
func (p *publisher) shutdown() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.stop()
	p.cond.Broadcast()
	p.syncCond.Broadcast()
	p.deliverCond.Broadcast()
	p.wg.Wait()
}

func (p *publisher) add(s *Subscription) {
	p.mu.Lock()
	p.subs[s.id] = newSubState(s)
	p.lastResponse = time.Now()
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *publisher) remove(id uint32) {
	p.mu.Lock()
	delete(p.subs, id)
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *publisher) ack(sub, seq uint32) {
	p.mu.Lock()
	p.acks = append(p.acks, &ua.SubscriptionAcknowledgement{SubscriptionID: sub, SequenceNumber: seq})
	p.mu.Unlock()
}

// sent records the acknowledgements going out with a Publish request;
// p.mu held.
func (p *publisher) sent(acks []*ua.SubscriptionAcknowledgement) {
	for _, a := range acks {
		if st := p.subs[a.SubscriptionID]; st != nil {
			st.acked = max(st.acked, a.SequenceNumber)
		}
	}
}

// acknowledged returns the highest sequence number of subscription id
// acknowledged to the server.
func (p *publisher) acknowledged(id uint32) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.subs[id]; st != nil {
		return st.acked
	}
	return 0
}

// channelChanged is called by Resume after the swap: publishing waits for
// the sync pass.
func (p *publisher) channelChanged(outcome ResumeOutcome) {
	p.mu.Lock()
	p.syncNeeded = true
	p.syncGen++
	if outcome == SessionRecreated || p.syncOutcome != SessionRecreated {
		p.syncOutcome = outcome
	}
	p.lastResponse = time.Now()
	p.mu.Unlock()
	p.cond.Broadcast()
	p.syncCond.Broadcast()
}

// budget is the longest keep-alive period of the subscriptions; p.mu held.
func (p *publisher) budget() time.Duration {
	var b time.Duration
	for _, st := range p.subs {
		b = max(b, st.sub.Params().keepAliveBudget())
	}
	return b
}

// worker keeps one Publish request outstanding whenever there is something
// to publish for.
func (p *publisher) worker() {
	for {
		p.mu.Lock()
		for !p.stopped && (len(p.subs) == 0 || p.syncNeeded || len(p.queue) >= p.queueCap || p.c.ch.Load().err() != nil) {
			p.cond.Wait()
		}
		if p.stopped {
			p.mu.Unlock()
			return
		}
		ch := p.c.ch.Load()
		acks := p.acks
		p.acks = nil
		p.sent(acks)
		p.nextReq++
		id := p.nextReq
		p.inflight[id] = true
		timeout := p.budget()*time.Duration(p.c.cfg.PublishRequests+2) + p.c.cfg.RequestTimeout
		p.mu.Unlock()

		res, err := callWithin[*ua.PublishResponse](p.ctx, p.c, ch, &ua.PublishRequest{SubscriptionAcknowledgements: acks}, timeout)
		if gap := p.finish(id, acks, res, err); gap != nil {
			p.fillGap(*gap)
		}
		if err != nil && !p.waitAfterError(err) {
			return
		}
	}
}

// waitAfterError backs off after a failed Publish when waiting for a new
// channel would not: errors that leave the channel up.
func (p *publisher) waitAfterError(err error) bool {
	if errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) {
		return true // the loop waits for a new channel or stops
	}
	p.c.log.Debug("publish failed", "err", err)
	select {
	case <-p.ctx.Done():
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

// gap asks for Republish of the missing sequence numbers of sub up to last.
type gap struct {
	sub  uint32
	last uint32
}

// finish handles the outcome of Publish request id.
func (p *publisher) finish(id uint64, acks []*ua.SubscriptionAcknowledgement, res *ua.PublishResponse, err error) *gap {
	p.mu.Lock()
	defer p.cond.Broadcast()
	defer p.mu.Unlock()
	delete(p.inflight, id)
	if err != nil {
		// The server may or may not have seen them; acknowledging twice
		// only earns BadSequenceNumberUnknown.
		p.acks = append(acks, p.acks...)
		if sessionGone(err) {
			p.syncNeeded = true // wait for Resume to bring a session
		}
		return nil
	}
	p.lastResponse = time.Now()
	for i, st := range res.Results {
		if isBad(st) && st != ua.StatusBadSequenceNumberUnknown && i < len(acks) {
			p.c.log.Debug("acknowledgement refused", "subscription", acks[i].SubscriptionID, "seq", acks[i].SequenceNumber, "status", st)
		}
	}
	state := p.subs[res.SubscriptionID]
	msg := res.NotificationMessage
	if state == nil || msg == nil {
		return nil
	}
	if len(msg.NotificationData) == 0 {
		// A keep-alive carries the next sequence number to be used: the
		// ones before it that did not arrive are missing.
		if msg.SequenceNumber > state.next {
			return &gap{sub: res.SubscriptionID, last: msg.SequenceNumber - 1}
		}
		return nil
	}
	p.accept(state, p.notification(res.SubscriptionID, msg, false))
	if len(state.pending) > 0 {
		lowest := slices.Min(mapKeys(state.pending))
		return &gap{sub: res.SubscriptionID, last: lowest - 1}
	}
	return nil
}

func mapKeys(m map[uint32]*Notification) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// notification converts a NotificationMessage.
func (p *publisher) notification(sub uint32, msg *ua.NotificationMessage, republished bool) *Notification {
	n := &Notification{SubscriptionID: sub, SequenceNumber: msg.SequenceNumber, PublishTime: msg.PublishTime, Republished: republished, pub: p}
	changes := 0
	for _, eo := range msg.NotificationData {
		if eo != nil {
			if d, ok := eo.Value.(*ua.DataChangeNotification); ok {
				changes += len(d.MonitoredItems)
			}
		}
	}
	if changes > 0 {
		n.DataChanges = make([]DataChange, 0, changes)
	}
	for _, eo := range msg.NotificationData {
		if eo == nil {
			continue
		}
		switch d := eo.Value.(type) {
		case *ua.DataChangeNotification:
			for _, mi := range d.MonitoredItems {
				if mi != nil {
					n.DataChanges = append(n.DataChanges, DataChange{ClientHandle: mi.ClientHandle, Value: mi.Value})
				}
			}
		case *ua.StatusChangeNotification:
			n.Status = d.Status
		case *ua.EventNotificationList:
			n.Events = append(n.Events, eventFields(d)...)
		}
	}
	return n
}

// accept delivers n if it is the next of its subscription, holds it if it
// is early, drops it if it is a duplicate; p.mu held.
func (p *publisher) accept(st *subState, n *Notification) {
	switch seq := n.SequenceNumber; {
	case seq < st.next:
		return // delivered before
	case seq > st.next:
		st.pending[seq] = n
		return
	}
	p.enqueue(st, n)
	st.next++
	p.drain(st)
}

// drain queues the held-back messages that are now next; p.mu held.
func (p *publisher) drain(st *subState) {
	for {
		m, ok := st.pending[st.next]
		if !ok {
			return
		}
		delete(st.pending, st.next)
		p.enqueue(st, m)
		st.next++
	}
}

// skip gives up on sequence numbers before upto of st: they are lost;
// p.mu held. It returns the Gap event.
func (p *publisher) skip(st *subState, upto uint32) ClientEvent {
	ev := ClientEvent{Kind: PublishGap, SubscriptionID: st.sub.id, FirstLost: st.next, LastLost: upto - 1}
	st.next = upto
	p.drain(st)
	return ev
}

// fillGap waits for older responses, then republishes what is still
// missing; what the server no longer has is reported as a gap. One worker
// at a time fills a subscription's gaps, until none is left.
func (p *publisher) fillGap(g gap) {
	p.mu.Lock()
	st := p.subs[g.sub]
	if st == nil || st.filling {
		p.mu.Unlock()
		return
	}
	st.filling = true
	// A missing message is usually on its way in another worker's response
	// (workers send and receive concurrently, so their order is not the
	// server's). Give it gapWait to arrive before asking for Republish.
	timer := time.AfterFunc(gapWait, p.cond.Broadcast)
	deadline := time.Now().Add(gapWait)
	for !p.stopped && p.subs[g.sub] == st && st.next <= g.last && time.Now().Before(deadline) {
		p.cond.Wait()
	}
	timer.Stop()
	p.mu.Unlock()

	var events []ClientEvent
	defer func() { p.emit(events...) }()
	for {
		p.mu.Lock()
		seq, upto := st.next, g.last
		if len(st.pending) > 0 {
			upto = max(upto, slices.Min(mapKeys(st.pending))-1)
		}
		if p.stopped || p.subs[g.sub] != st || seq > upto {
			// Decided under the lock that the worker handling the next
			// message sees: it fills what this one leaves.
			st.filling = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		n, err := p.republish(g.sub, seq)
		p.mu.Lock()
		switch {
		case err == nil:
			p.accept(st, n)
		case errors.Is(err, ua.StatusBadMessageNotAvailable) && st.next == seq:
			events = append(events, p.skip(st, seq+1))
		}
		p.mu.Unlock()
		p.cond.Broadcast()
		if err != nil && !errors.Is(err, ua.StatusBadMessageNotAvailable) {
			p.mu.Lock()
			st.filling = false
			p.mu.Unlock()
			return
		}
	}
}

func (p *publisher) republish(sub, seq uint32) (*Notification, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.c.cfg.RequestTimeout)
	defer cancel()
	res, err := call[*ua.RepublishResponse](ctx, p.c, &ua.RepublishRequest{SubscriptionID: sub, RetransmitSequenceNumber: seq})
	if err != nil {
		return nil, err
	}
	if res.NotificationMessage == nil || res.NotificationMessage.SequenceNumber != seq {
		return nil, ua.StatusBadMessageNotAvailable
	}
	return p.notification(sub, res.NotificationMessage, true), nil
}

// emit reports events to ClientConfig.OnClientEvent, outside p.mu.
// Adjacent gaps of a subscription are reported as one.
func (p *publisher) emit(events ...ClientEvent) {
	var merged []ClientEvent
	for _, ev := range events {
		if n := len(merged); n > 0 && ev.Kind == PublishGap {
			last := &merged[n-1]
			if last.Kind == PublishGap && last.SubscriptionID == ev.SubscriptionID && last.LastLost != 0 && last.LastLost+1 == ev.FirstLost {
				last.LastLost = ev.LastLost
				continue
			}
		}
		merged = append(merged, ev)
	}
	for _, ev := range merged {
		p.c.emit(ev)
	}
}

// deliverer hands queued notifications to the consumer in order.
func (p *publisher) deliverer() {
	defer close(p.out)
	p.mu.Lock()
	for {
		for !p.stopped && len(p.queue) == 0 {
			p.deliverCond.Wait()
		}
		if p.stopped {
			p.mu.Unlock()
			return
		}
		n := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.delivering = true
		p.mu.Unlock()
		p.cond.Broadcast() // room in the queue
		select {
		case p.out <- n:
		case <-p.ctx.Done():
			return
		}
		p.mu.Lock()
		p.delivering = false
	}
}

// watchdog closes the connection when Publish requests are outstanding but
// nothing came back within the keep-alive budget plus half of it.
func (p *publisher) watchdog() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		ch := p.c.ch.Load()
		budget := p.budget()
		limit := budget + max(budget/2, time.Second)
		silent := time.Since(p.lastResponse)
		waiting := len(p.inflight) > 0 && !p.syncNeeded && ch.err() == nil
		if !waiting {
			p.lastResponse = time.Now()
		}
		p.mu.Unlock()
		if waiting && budget > 0 && silent > limit {
			ch.end(ErrStalled) // reported as PublishStalled
			ch.shutdown()
		}
	}
}
