package bridge

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rcbridge/rcbridge/mapping"
)

// pipeline carries one session's notifications to the bus: it encodes each
// NotificationMessage as one batch, publishes it, and acknowledges the
// message to the server once the bus confirmed the whole batch (DESIGN
// decision 3). It runs on one goroutine per session; confirmations arrive
// on the bus adapter's goroutines.
type pipeline struct {
	sup     *supervisor
	client  Client
	handles []*mapping.Item // client handle → item
	seqs    *seqTracker

	// msgPrefix is the MsgID server field: the server key and an epoch
	// (the pipeline's start, renewed when a subscription restarts under an
	// old id), so that a new session or subscription, whose ids and
	// sequence numbers start afresh, never reuses the MsgIDs of an older
	// one inside JetStream's duplicate window.
	msgPrefix atomic.Pointer[string]
}

func newPipeline(sup *supervisor, c Client, handles []*mapping.Item) *pipeline {
	p := &pipeline{sup: sup, client: c, handles: handles, seqs: newSeqTracker()}
	p.newEpoch()
	return p
}

// newEpoch starts a new MsgID epoch: the time in base 36 nanoseconds.
func (p *pipeline) newEpoch() {
	s := p.sup.key + "@" + strconv.FormatInt(time.Now().UnixNano(), 36)
	p.msgPrefix.Store(&s)
}

// run handles notifications until ctx ends.
func (p *pipeline) run(ctx context.Context) {
	ch := p.client.Notifications()
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-ch:
			if !n.Lost.IsZero() {
				p.gap(ctx, n)
				continue
			}
			p.deliver(ctx, n)
		}
	}
}

// deliver publishes one NotificationMessage and arranges its
// acknowledgement.
func (p *pipeline) deliver(ctx context.Context, n Notification) {
	m := &p.sup.m
	m.Notifications.Add(1)
	switch p.seqs.begin(n.Subscription, n.Sequence, n.Republished) {
	case seqRestart:
		// A subscription recreated under an old id: its MsgIDs must not
		// repeat the old one's inside JetStream's duplicate window.
		p.newEpoch()
	case seqDone:
		// Published and confirmed before, but the acknowledgement did not
		// reach the server (the connection dropped): acknowledge again.
		m.Duplicates.Add(1)
		ack(n)
		return
	case seqInFlight:
		// Its first copy is still on its way; its confirmation
		// acknowledges it.
		m.Duplicates.Add(1)
		return
	}
	batch := p.encode(n)
	if len(batch) == 0 {
		p.confirmed(n)
		return
	}
	err := p.sup.b.cfg.Publisher.Publish(ctx, batch, p.confirmFunc(n, len(batch)))
	if errors.Is(err, ErrInvalidMessage) {
		// One message the bus refuses must not hold back the rest: send
		// them one by one and drop only the refused ones.
		p.publishEach(ctx, n, batch)
		return
	}
	if err != nil {
		p.seqs.fail(n.Subscription, n.Sequence)
		m.Failed.Add(uint64(len(batch)))
		if ctx.Err() == nil {
			p.sup.log.Warn("publish failed; the server keeps the message", "subscription", n.Subscription, "sequence", n.Sequence, "err", err)
		}
		return
	}
	m.Published.Add(uint64(len(batch)))
}

// payloadEstimate is the buffer reserved per data change: a JSON document
// of a scalar with both timestamps is about 250 bytes.
const payloadEstimate = 256

// encode renders the data changes of n as bus messages. All payloads share
// one buffer, owned by the bus until the batch is confirmed.
func (p *pipeline) encode(n Notification) []Message {
	buf := make([]byte, 0, len(n.Changes)*payloadEstimate)
	ends := make([]int, 0, len(n.Changes))
	items := make([]*mapping.Item, 0, len(n.Changes))
	for _, ch := range n.Changes {
		if int64(ch.Handle) >= int64(len(p.handles)) || p.handles[ch.Handle] == nil {
			p.sup.m.Dropped.Add(1)
			p.sup.log.Debug("data change for an unknown client handle dropped", "handle", ch.Handle)
			continue
		}
		it := p.handles[ch.Handle]
		buf = it.AppendPayload(buf, ch.Value)
		ends = append(ends, len(buf))
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil
	}
	prefix := *p.msgPrefix.Load()
	batch := make([]Message, len(items))
	start := 0
	for i, it := range items {
		end := ends[i]
		batch[i] = Message{
			Route:   it.Route,
			Payload: buf[start:end:end],
			ID:      MsgID{Server: prefix, Subscription: n.Subscription, Sequence: n.Sequence, Index: uint32(i)},
			QoS:     QoS(it.QoS),
			Retain:  it.Retain,
		}
		start = end
	}
	return batch
}

// confirmFunc returns the ConfirmFunc of n's batch of size messages.
func (p *pipeline) confirmFunc(n Notification, size int) ConfirmFunc {
	return func(err error) {
		if err != nil {
			p.seqs.fail(n.Subscription, n.Sequence)
			p.sup.m.Failed.Add(uint64(size))
			return
		}
		p.sup.m.Confirmed.Add(uint64(size))
		p.confirmed(n)
	}
}

// confirmed records n as delivered and acknowledges it to the server.
func (p *pipeline) confirmed(n Notification) {
	p.seqs.done(n.Subscription, n.Sequence)
	ack(n)
	p.sup.m.Acknowledged.Add(1)
}

// ack acknowledges n to the server.
func ack(n Notification) {
	if n.Ack != nil {
		n.Ack()
	}
}

// publishEach publishes the messages of n one at a time after the bus
// refused the batch; refused messages are dropped, and n is acknowledged
// once every accepted one is confirmed.
func (p *pipeline) publishEach(ctx context.Context, n Notification, batch []Message) {
	m := &p.sup.m
	var (
		mu      sync.Mutex
		pending = 1 // released after the loop, so n is not confirmed early
		failed  bool
	)
	release := func(err error) {
		mu.Lock()
		pending--
		if err != nil {
			failed = true
		}
		last, bad := pending == 0, failed
		mu.Unlock()
		if !last {
			return
		}
		if bad {
			p.seqs.fail(n.Subscription, n.Sequence)
			return
		}
		p.confirmed(n)
	}
	for i := range batch {
		mu.Lock()
		pending++
		mu.Unlock()
		err := p.sup.b.cfg.Publisher.Publish(ctx, batch[i:i+1:i+1], func(err error) {
			if err != nil {
				m.Failed.Add(1)
			} else {
				m.Confirmed.Add(1)
			}
			release(err)
		})
		switch {
		case errors.Is(err, ErrInvalidMessage):
			m.Dropped.Add(1)
			p.sup.log.Warn("message refused by the bus, dropped", "route", batch[i].Route, "size", len(batch[i].Payload), "err", err)
			release(nil)
		case err != nil:
			m.Failed.Add(1)
			release(err)
		default:
			m.Published.Add(1)
		}
	}
	release(nil)
}

// gap publishes a gap event for n.Lost.
func (p *pipeline) gap(ctx context.Context, n Notification) {
	g := n.Lost
	p.sup.m.Gaps.Add(1)
	if g.Recreated {
		p.seqs.forget(n.Subscription)
	} else {
		p.seqs.skip(n.Subscription, g.From, g.To)
	}
	p.sup.log.Warn("data lost", "subscription", n.Subscription, "from", g.From, "to", g.To, "reason", g.Reason)
	p.sup.publishEvent(ctx, gapEvent(p.sup, n.Subscription, g))
}
