package rc

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gopcua/opcua/ua"
)

// syncer runs the sync pass after Resume, before publishing goes on: with
// the same session it republishes each subscription's messages that were
// sent on the lost connection (Part 4, 5.13.6); with a new session it
// transfers the subscriptions (Part 4, 5.13.7) or, failing that, creates
// them again and reports the gap.
func (p *publisher) syncer() {
	for {
		p.mu.Lock()
		for !p.stopped && (p.syncOutcome == 0 || p.c.ch.Load().err() != nil) {
			p.syncCond.Wait()
		}
		if p.stopped {
			p.mu.Unlock()
			return
		}
		outcome, gen := p.syncOutcome, p.syncGen
		p.mu.Unlock()

		events, err := p.sync(outcome)

		p.mu.Lock()
		lost := errors.Is(err, ErrConnectionLost) || errors.Is(err, context.Canceled)
		switch {
		case p.syncGen != gen:
			// Resumed again meanwhile: another pass runs for the new
			// connection.
		case lost:
			p.syncOutcome = 0 // the connection is gone too: wait for Resume
		default:
			if err != nil {
				p.c.log.Warn("publish sync pass", "err", err)
			}
			p.syncNeeded, p.syncOutcome = false, 0
		}
		p.lastResponse = time.Now()
		p.mu.Unlock()
		p.cond.Broadcast()
		p.emit(events...)
	}
}

// sync runs one sync pass.
func (p *publisher) sync(outcome ResumeOutcome) ([]ClientEvent, error) {
	p.mu.Lock()
	ids := make([]uint32, 0, len(p.subs))
	for id := range p.subs {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	slices.Sort(ids)
	if outcome == SessionRecreated {
		return p.transferOrRecreate(ids)
	}
	var events []ClientEvent
	for _, id := range ids {
		ev, err := p.catchUp(id)
		events = append(events, ev...)
		if err != nil {
			return events, err
		}
	}
	return events, nil
}

// catchUp republishes sub's messages from the next undelivered one until
// the server has no more. Messages held back because an earlier one was
// missing are delivered after a gap report when the missing ones are gone.
func (p *publisher) catchUp(sub uint32) ([]ClientEvent, error) {
	var events []ClientEvent
	for {
		p.mu.Lock()
		st := p.subs[sub]
		if st == nil || p.stopped {
			p.mu.Unlock()
			return events, nil
		}
		seq := st.next
		p.mu.Unlock()

		n, err := p.republish(sub, seq)
		p.mu.Lock()
		st = p.subs[sub]
		switch {
		case st == nil:
		case err == nil:
			p.accept(st, n)
		case errors.Is(err, ua.StatusBadMessageNotAvailable) && st.next == seq && len(st.pending) > 0:
			events = append(events, p.skip(st, slices.Min(mapKeys(st.pending))))
			err = nil // go on after the held-back messages
		}
		p.mu.Unlock()
		p.cond.Broadcast()
		if errors.Is(err, ua.StatusBadMessageNotAvailable) {
			return events, nil // caught up
		}
		if err != nil || st == nil {
			return events, err
		}
	}
}

// transferOrRecreate moves the subscriptions to the new session, or creates
// them again where the server cannot transfer them.
func (p *publisher) transferOrRecreate(ids []uint32) ([]ClientEvent, error) {
	var events []ClientEvent
	if len(ids) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.c.cfg.RequestTimeout)
	res, err := call[*ua.TransferSubscriptionsResponse](ctx, p.c, &ua.TransferSubscriptionsRequest{SubscriptionIDs: ids, SendInitialValues: true})
	cancel()
	if errors.Is(err, ErrConnectionLost) || errors.Is(err, context.Canceled) {
		return nil, err
	}
	for i, id := range ids {
		if err == nil && i < len(res.Results) && res.Results[i] != nil && !isBad(res.Results[i].StatusCode) {
			ev, err := p.transferred(id, res.Results[i].AvailableSequenceNumbers)
			events = append(events, ev...)
			if err != nil {
				return events, err
			}
			continue
		}
		ev, err := p.recreate(id)
		events = append(events, ev...)
		if err != nil {
			return events, err
		}
	}
	return events, nil
}

// transferred continues a transferred subscription: anything before the
// first available sequence number is lost, the rest is republished.
func (p *publisher) transferred(id uint32, available []uint32) ([]ClientEvent, error) {
	events := []ClientEvent{{Kind: PublishTransferred, SubscriptionID: id}}
	p.mu.Lock()
	if st := p.subs[id]; st != nil && len(available) > 0 {
		if first := slices.Min(available); first > st.next {
			events = append(events, p.skip(st, first))
		}
	}
	p.mu.Unlock()
	ev, err := p.catchUp(id)
	return append(events, ev...), err
}

// recreate creates subscription id again with its monitored items (same
// client handles) and reports everything after the last delivered message
// as lost.
func (p *publisher) recreate(id uint32) ([]ClientEvent, error) {
	p.mu.Lock()
	st := p.subs[id]
	p.mu.Unlock()
	if st == nil {
		return nil, nil
	}
	s := st.sub
	params, items := s.Params(), s.Items()
	ctx, cancel := context.WithTimeout(p.ctx, p.c.cfg.RequestTimeout)
	defer cancel()
	res, err := call[*ua.CreateSubscriptionResponse](ctx, p.c, createSubscriptionRequest(params))
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	var events []ClientEvent
	for len(st.pending) > 0 { // deliver what was held back
		events = append(events, p.skip(st, slices.Min(mapKeys(st.pending))))
	}
	first := st.next
	delete(p.subs, id)
	s.mu.Lock()
	s.id = res.SubscriptionID
	s.params = revised(params, res)
	s.items = make(map[uint32]*MonitoredItem)
	s.mu.Unlock()
	p.subs[res.SubscriptionID] = newSubState(s)
	p.mu.Unlock()
	events = append(events,
		ClientEvent{Kind: PublishGap, SubscriptionID: id, FirstLost: first},
		ClientEvent{Kind: PublishRecreated, SubscriptionID: id, NewSubscriptionID: res.SubscriptionID})
	if err := s.remonitor(ctx, items); err != nil {
		return events, err
	}
	return events, nil
}

// remonitor creates items again, keeping their client handles.
func (s *Subscription) remonitor(ctx context.Context, items []MonitoredItem) error {
	s.mu.Lock()
	id, interval := s.id, s.params.PublishingInterval
	s.mu.Unlock()
	creates := make([]*ua.MonitoredItemCreateRequest, len(items))
	for i := range items {
		creates[i] = createRequest(&items[i], interval)
	}
	res, err := s.c.createItems(ctx, id, creates)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range items {
		it := items[i]
		applyResult(&it, res[i])
		if isBad(it.Status) {
			s.c.log.Warn("monitored item not recreated", "node", it.Request.NodeID.String(), "status", it.Status)
			continue
		}
		s.items[it.ClientHandle] = &it
	}
	return nil
}
