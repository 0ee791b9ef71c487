package mqttbus

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/rcbridge/rcbridge/bridge"
)

// Publish implements bridge.Publisher.
func (b *Bus) Publish(ctx context.Context, msgs []bridge.Message, confirm bridge.ConfirmFunc) error {
	if err := check(msgs); err != nil {
		return err
	}
	if confirm == nil {
		confirm = func(error) {}
	}
	n, err := b.win.Acquire(ctx, b.closeCh, len(msgs), bridge.ErrClosed)
	if err != nil {
		return fmt.Errorf("mqttbus: publish: %w", err)
	}
	bt := &batch{msgs: msgs, confirm: confirm, slots: n, since: time.Now(), parts: 1}
	for i := range msgs {
		if msgs[i].QoS > bridge.AtMostOnce {
			bt.parts++
		}
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		b.win.Release(n)
		return fmt.Errorf("mqttbus: publish: %w", bridge.ErrClosed)
	}
	b.pending = append(b.pending, bt)
	if b.holding.Load() || !b.c.IsConnectionOpen() {
		b.holding.Store(true)
		b.held = append(b.held, heldPart{b: bt})
		b.mu.Unlock()
		b.poke()
		return nil
	}
	b.mu.Unlock()
	b.send(bt, 0)
	return nil
}

// check refuses a batch that cannot be sent, before anything is sent.
func check(msgs []bridge.Message) error {
	if len(msgs) == 0 {
		return fmt.Errorf("mqttbus: publish: empty batch: %w", bridge.ErrInvalidMessage)
	}
	for i := range msgs {
		m := &msgs[i]
		if err := validTopic(m.Route); err != nil {
			return fmt.Errorf("mqttbus: publish: message %d: %w: %w", i, bridge.ErrInvalidMessage, err)
		}
		if !m.QoS.Valid() {
			return fmt.Errorf("mqttbus: publish: message %d on %q: QoS %d: %w", i, m.Route, m.QoS, bridge.ErrInvalidMessage)
		}
	}
	return nil
}

// send hands bt's messages from index from on to paho. Caller holds
// pubMu. When the connection is found closed, the rest of the batch is
// held and send reports false.
func (b *Bus) send(bt *batch, from int) bool {
	var toks []mqtt.Token
	flush0 := func() {
		if len(toks) == 0 {
			return
		}
		b.mu.Lock()
		bt.parts++
		b.mu.Unlock()
		w := qos0Wait{b: bt, toks: toks}
		toks = nil
		select {
		case <-w.toks[len(w.toks)-1].Done():
			// Already written (tokens complete in write order): settle it
			// here and save the waiter a wake-up.
			b.settle(w)
		default:
			b.qos0 <- w
		}
	}
	// hold stops sending at message i: it and the rest wait in held.
	hold := func(i int) bool {
		b.m.Published.Add(uint64(i - from))
		flush0()
		b.mu.Lock()
		b.holding.Store(true)
		b.held = append(b.held, heldPart{b: bt, from: i})
		b.mu.Unlock()
		b.poke()
		return false
	}
	for i := from; i < len(bt.msgs); i++ {
		m := &bt.msgs[i]
		// Read before holding: a dial after this read is seen below.
		dials := b.conns.dialed()
		if b.holding.Load() || !b.c.IsConnectionOpen() {
			return hold(i)
		}
		if m.QoS == bridge.AtMostOnce {
			toks = append(toks, b.c.Publish(m.Route, 0, m.Retain, m.Payload))
			continue
		}
		if !b.store.waitRoom(b.o.MaxInFlight, b.stopCh) {
			b.m.Published.Add(uint64(i - from))
			flush0()
			return false // closed; Close fails the batch
		}
		if b.holding.Load() || !b.c.IsConnectionOpen() {
			return hold(i) // the connection went while waiting for room
		}
		rec := &pubRec{b: bt, i: i}
		resumes := b.store.resumes.Load()
		b.store.arm(rec)
		tok := b.c.Publish(m.Route, byte(m.QoS), m.Retain, m.Payload)
		claimed := b.store.disarm()
		if !claimed {
			// paho refused it before storing (disconnected meanwhile).
			b.log.Debug("publish refused; holding", "err", tok.Error())
			return hold(i)
		}
		if b.store.resumes.Load() != resumes || b.conns.dialed() != dials {
			// A new connection came up while paho had the message: it
			// may have gone out on it before paho's re-send of older
			// ones (paho's Publish can wait for the writer across a
			// reconnect), and been acknowledged there before the re-send
			// reached it.
			b.store.addLate(rec)
		}
	}
	b.m.Published.Add(uint64(len(bt.msgs) - from))
	flush0()
	b.partDone(bt) // the send guard
	return true
}

// release sends the held batches once the connection is open and every
// QoS 1/2 message from before the loss is acknowledged.
func (b *Bus) release() {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.mu.Lock()
	if !b.holding.Load() || !b.c.IsConnectionOpen() || b.store.outstanding() > 0 {
		b.mu.Unlock()
		return
	}
	parts := b.held
	b.held = nil
	b.holding.Store(false)
	b.mu.Unlock()
	// Messages that may have overtaken the re-send go once more, so that
	// the newest value of every topic arrives last.
	late := b.store.release()
	for _, r := range late {
		m := &r.b.msgs[r.i]
		b.store.arm(&pubRec{})
		b.c.Publish(m.Route, byte(m.QoS), m.Retain, m.Payload)
		b.store.disarm()
	}
	b.m.Retried.Add(uint64(len(late)))
	for k, p := range parts {
		if !b.send(p.b, p.from) {
			// Lost the connection again: send put the rest of this batch
			// in held; the following batches go after it.
			b.mu.Lock()
			b.held = append(b.held, parts[k+1:]...)
			b.mu.Unlock()
			return
		}
	}
	if len(parts) > 0 {
		b.log.Info("held batches sent", "batches", len(parts))
	}
}

// onAck is called by the store when the broker acknowledged a QoS 1/2
// message; it runs on paho's receiving goroutine and must not block.
func (b *Bus) onAck(rec *pubRec) {
	if rec.done != nil {
		close(rec.done)
	}
	if rec.b != nil {
		b.m.Confirmed.Add(1)
		b.partDone(rec.b)
	}
	if b.holding.Load() {
		b.poke()
	}
}

// partDone counts one acknowledgement of bt and confirms it when it was
// the last.
func (b *Bus) partDone(bt *batch) {
	b.mu.Lock()
	bt.parts--
	if bt.parts > 0 || bt.done {
		b.mu.Unlock()
		return
	}
	bt.done = true
	n := 0
	for n < len(b.pending) && b.pending[n].done {
		n++
	}
	clear(b.pending[:n])
	b.pending = b.pending[n:]
	b.checkDrainedLocked()
	b.mu.Unlock()
	b.finish(bt, nil)
}

// finish ends a batch: metrics, window, confirm.
func (b *Bus) finish(bt *batch, err error) {
	if err != nil {
		b.m.Failed.Add(uint64(len(bt.msgs)))
	}
	b.win.Release(bt.slots)
	bt.confirm(err)
}

// waitTokens confirms QoS 0 groups once paho wrote them, in write order.
func (b *Bus) waitTokens() {
	defer b.wg.Done()
	for {
		select {
		case w := <-b.qos0:
			for _, t := range w.toks {
				select {
				case <-t.Done():
				case <-b.stopCh:
					return
				}
			}
			b.settle(w)
		case <-b.stopCh:
			return
		}
	}
}

// settle counts a written QoS 0 group, the lost messages of it included,
// and gives its part of the batch back.
func (b *Bus) settle(w qos0Wait) {
	var lost uint64
	var lastErr error
	for _, t := range w.toks {
		if err := t.Error(); err != nil {
			lost++
			lastErr = err
		}
	}
	if lost > 0 {
		b.m.Lost.Add(lost)
		b.log.Warn("QoS 0 messages lost (not sent again: at most once)", "lost", lost, "err", lastErr)
	}
	b.m.Confirmed.Add(uint64(len(w.toks)) - lost)
	b.partDone(w.b)
}

// publishTracked publishes one message outside the data path (presence,
// command results) and waits until the broker acknowledged it (QoS 1/2)
// or paho wrote it (QoS 0).
func (b *Bus) publishTracked(ctx context.Context, topic string, qos bridge.QoS, retain bool, payload []byte) error {
	if !b.c.IsConnectionOpen() {
		return fmt.Errorf("mqttbus: publish %q: %w", topic, bridge.ErrNotConnected)
	}
	ctx, cancel := withDefaultTimeout(ctx, b.o.AckTimeout)
	defer cancel()
	rec := &pubRec{done: make(chan struct{})}
	b.pubMu.Lock()
	if qos > bridge.AtMostOnce {
		b.store.arm(rec)
	}
	tok := b.c.Publish(topic, byte(qos), retain, payload)
	claimed := qos == bridge.AtMostOnce || b.store.disarm()
	b.pubMu.Unlock()
	if !claimed {
		return fmt.Errorf("mqttbus: publish %q: %w: %v", topic, bridge.ErrNotConnected, tok.Error())
	}
	var done <-chan struct{} = rec.done
	if qos == bridge.AtMostOnce {
		done = tok.Done()
	}
	select {
	case <-done:
		if qos == bridge.AtMostOnce && tok.Error() != nil {
			return fmt.Errorf("mqttbus: publish %q: %w", topic, tok.Error())
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqttbus: publish %q: not acknowledged: %w", topic, ctx.Err())
	case <-b.stopCh:
		return fmt.Errorf("mqttbus: publish %q: %w", topic, bridge.ErrClosed)
	}
}

// withDefaultTimeout gives ctx a deadline when it has none.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
