package natsbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rcbridge/rcbridge/bridge"
)

// batch is one accepted Publish call until it is confirmed or failed.
type batch struct {
	msgs    []bridge.Message
	confirm bridge.ConfirmFunc
	slots   int       // window slots held
	since   time.Time // when it was accepted, for Ready
	gen     uint64    // core: reconnect count read before its last write
	written bool      // core: every message written since gen was read (under mu)

	// JetStream only.
	state   []msgState
	attempt []*nats.Msg // the live attempt of each message
	left    int         // messages not acked yet
	done    bool        // confirmed or failed; waiting to leave pending
}

// msgState is the JetStream state of one message of a batch.
type msgState uint8

const (
	inFlight msgState = iota // sent, PubAck awaited
	acked                    // stored by the stream
	lost                     // must be sent again
)

// slot locates one message attempt.
type slot struct {
	b *batch
	i int
}

// Publish implements bridge.Publisher.
func (b *Bus) Publish(ctx context.Context, msgs []bridge.Message, confirm bridge.ConfirmFunc) error {
	if err := b.check(msgs); err != nil {
		return err
	}
	if confirm == nil {
		confirm = func(error) {}
	}
	n, err := b.win.Acquire(ctx, b.closeCh, len(msgs), bridge.ErrClosed)
	if err != nil {
		return fmt.Errorf("natsbus: publish: %w", err)
	}
	bt := &batch{msgs: msgs, confirm: confirm, slots: n, since: time.Now()}
	if b.js != nil {
		bt.state = make([]msgState, len(msgs))
		bt.attempt = make([]*nats.Msg, len(msgs))
		bt.left = len(msgs)
	}
	if err := b.enter(); err != nil {
		b.win.Release(n)
		return err
	}
	// Holding wmu and mu, not closing.
	if b.recovering {
		// The connection is being repaired: the batch waits in the window
		// and the re-send writes it after everything older.
		for i := range bt.state {
			bt.state[i] = lost
		}
		b.pending = append(b.pending, bt)
		b.mu.Unlock()
		b.wmu.Unlock()
		b.poke()
		return nil
	}
	if b.js == nil {
		// The batch joins pending now, so that Close waits for it; a
		// flush confirms only batches marked written before its PING.
		b.pending = append(b.pending, bt)
		b.mu.Unlock()
		if err = b.writeCore(bt); err == nil {
			b.mu.Lock()
			bt.written = true
			b.mu.Unlock()
		}
	} else {
		// JetStream attempts are registered before they are written,
		// so that every PubAck finds its message.
		b.pending = append(b.pending, bt)
		atts := b.registerLocked(bt, nil)
		b.mu.Unlock()
		err = b.writeJS(atts)
	}
	if err != nil {
		// Still holding wmu: nothing newer is written before the re-send.
		b.startRecovery(err)
	}
	b.wmu.Unlock()
	b.poke()
	return nil
}

// check refuses a batch that cannot be sent, before anything is sent.
func (b *Bus) check(msgs []bridge.Message) error {
	if len(msgs) == 0 {
		return fmt.Errorf("natsbus: publish: empty batch: %w", bridge.ErrInvalidMessage)
	}
	limit := b.nc.MaxPayload()
	for i := range msgs {
		m := &msgs[i]
		if err := validSubject(m.Route); err != nil {
			return fmt.Errorf("natsbus: publish: message %d: %w: %w", i, bridge.ErrInvalidMessage, err)
		}
		if b.js != nil && !b.capture.captures(m.Route) {
			return fmt.Errorf("natsbus: publish: message %d: subject %q is not captured by stream %q: %w",
				i, m.Route, b.o.JetStream.Stream, bridge.ErrInvalidMessage)
		}
		if !m.QoS.Valid() {
			return fmt.Errorf("natsbus: publish: message %d on %q: QoS %d: %w", i, m.Route, m.QoS, bridge.ErrInvalidMessage)
		}
		if size := int64(len(m.Payload) + len(m.Route) + 64); limit > 0 && size > limit {
			return fmt.Errorf("natsbus: publish: message %d on %q: %d payload bytes exceed the server limit %d: %w",
				i, m.Route, len(m.Payload), limit, bridge.ErrInvalidMessage)
		}
	}
	return nil
}

// enter takes wmu and then mu unless the adapter is closing. While a
// re-send runs it holds wmu, so a batch entered after it is written after
// everything the re-send wrote.
func (b *Bus) enter() error {
	b.wmu.Lock()
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		b.wmu.Unlock()
		return fmt.Errorf("natsbus: publish: %w", bridge.ErrClosed)
	}
	return nil
}

// writeCore writes every message of bt. Caller holds wmu.
func (b *Bus) writeCore(bt *batch) error {
	bt.gen = b.nc.Stats().Reconnects
	for i := range bt.msgs {
		if err := b.nc.Publish(bt.msgs[i].Route, bt.msgs[i].Payload); err != nil {
			b.m.Published.Add(uint64(i))
			return fmt.Errorf("natsbus: publish %q: %w", bt.msgs[i].Route, err)
		}
	}
	b.m.Published.Add(uint64(len(bt.msgs)))
	return nil
}

// registerLocked creates a new attempt for every message of bt in only
// (all when nil) and returns them in order. Caller holds mu.
func (b *Bus) registerLocked(bt *batch, only []int) []*nats.Msg {
	add := func(i int) *nats.Msg {
		if old := bt.attempt[i]; old != nil {
			delete(b.recs, old)
		}
		m := &bt.msgs[i]
		nm := &nats.Msg{Subject: m.Route, Data: m.Payload}
		if !m.ID.IsZero() {
			nm.Header = nats.Header{jetstream.MsgIDHeader: []string{m.ID.String()}}
		}
		bt.attempt[i] = nm
		bt.state[i] = inFlight
		b.recs[nm] = &slot{b: bt, i: i}
		return nm
	}
	if only == nil {
		out := make([]*nats.Msg, len(bt.msgs))
		for i := range bt.msgs {
			out[i] = add(i)
		}
		return out
	}
	out := make([]*nats.Msg, len(only))
	for k, i := range only {
		out[k] = add(i)
	}
	return out
}

// writeJS publishes attempts asynchronously. Caller holds wmu. Attempts
// that could not be written are marked lost.
func (b *Bus) writeJS(atts []*nats.Msg) error {
	for k, nm := range atts {
		if _, err := b.js.PublishMsgAsync(nm, b.pubOpts...); err != nil {
			b.m.Published.Add(uint64(k))
			b.mu.Lock()
			for _, rest := range atts[k:] {
				if s := b.recs[rest]; s != nil {
					delete(b.recs, rest)
					s.b.state[s.i] = lost
				}
			}
			b.mu.Unlock()
			return fmt.Errorf("natsbus: publish %q: %w", nm.Subject, err)
		}
	}
	b.m.Published.Add(uint64(len(atts)))
	return nil
}

// startRecovery makes new publishes wait and the worker re-send.
func (b *Bus) startRecovery(cause error) {
	b.mu.Lock()
	if !b.recovering && !b.closing {
		b.recovering = true
		b.log.Warn("confirmation failed; re-sending unconfirmed messages", "err", cause)
	}
	b.mu.Unlock()
	b.poke()
}

// takeLocked removes and returns the live attempt nm, or nil when nm is
// an older attempt. Caller holds mu.
func (b *Bus) takeLocked(nm *nats.Msg) *slot {
	s := b.recs[nm]
	if s != nil {
		delete(b.recs, nm)
	}
	return s
}

// onAck is nats.go's PubAck callback (JetStream). It must not block.
func (b *Bus) onAck(_ jetstream.JetStream, nm *nats.Msg, _ *jetstream.PubAck) {
	b.mu.Lock()
	s := b.takeLocked(nm)
	if s == nil {
		b.mu.Unlock()
		return
	}
	bt := s.b
	bt.state[s.i] = acked
	bt.attempt[s.i] = nil
	bt.left--
	var finished *batch
	if bt.left == 0 && !bt.done {
		bt.done = true
		finished = bt
		b.popDoneLocked()
	}
	b.mu.Unlock()
	b.m.Confirmed.Add(1)
	if finished != nil {
		b.finish(finished, nil)
	}
}

// onAckErr is nats.go's async publish error callback (JetStream).
func (b *Bus) onAckErr(_ jetstream.JetStream, nm *nats.Msg, err error) {
	b.mu.Lock()
	s := b.takeLocked(nm)
	if s == nil {
		b.mu.Unlock()
		return
	}
	bt := s.b
	bt.attempt[s.i] = nil
	var apiErr *jetstream.APIError
	if bt.done {
		b.mu.Unlock()
		return
	}
	if errors.As(err, &apiErr) {
		// The stream refused the message (too large, limits): sending it
		// again cannot help. The batch fails; the bridge decides.
		for _, other := range bt.attempt {
			if other != nil {
				delete(b.recs, other)
			}
		}
		clear(bt.attempt)
		bt.done = true
		b.popDoneLocked()
		b.mu.Unlock()
		b.finish(bt, fmt.Errorf("natsbus: stream refused message %d on %q: %w", s.i, nm.Subject, err))
		return
	}
	bt.state[s.i] = lost
	b.mu.Unlock()
	b.startRecovery(err)
}

// popDoneLocked removes finished batches from the front of pending.
func (b *Bus) popDoneLocked() {
	n := 0
	for n < len(b.pending) && b.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	clear(b.pending[:n])
	b.pending = b.pending[n:]
	b.checkDrainedLocked()
}

// finish ends a batch: confirm, metrics, window.
func (b *Bus) finish(bt *batch, err error) {
	if err != nil {
		b.m.Failed.Add(uint64(len(bt.msgs)))
	}
	b.win.Release(bt.slots)
	bt.confirm(err)
}

// run is the worker: core flushes, re-sends, presence after reconnects.
func (b *Bus) run() {
	defer b.wg.Done()
	for {
		select {
		case <-b.wake:
		case <-b.stopCh:
			return
		}
		for b.step() {
			select {
			case <-b.stopCh:
				return
			default:
			}
		}
	}
}

// step does one unit of work and reports whether more may be waiting.
func (b *Bus) step() bool {
	b.mu.Lock()
	recovering := b.recovering
	b.mu.Unlock()
	if recovering {
		b.recover()
		return true
	}
	if b.repub.Swap(false) {
		b.republish()
	}
	if b.js == nil {
		return b.flush()
	}
	return false
}

// flush confirms the core batches written so far with one round trip.
func (b *Bus) flush() bool {
	b.mu.Lock()
	if b.recovering {
		b.mu.Unlock()
		return true
	}
	n := 0
	for n < len(b.pending) && b.pending[n].written {
		n++ // the batches written so far; one being written comes last
	}
	snap := slices.Clone(b.pending[:n])
	b.mu.Unlock()
	if len(snap) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(b.base, b.o.FlushTimeout)
	err := b.nc.FlushWithContext(ctx)
	cancel()
	gen := b.nc.Stats().Reconnects
	if err == nil {
		for _, bt := range snap {
			if bt.gen != gen {
				err = fmt.Errorf("natsbus: reconnected since batch was written")
				break
			}
		}
	}
	if err != nil {
		if b.base.Err() == nil {
			b.startRecovery(err)
		}
		return false
	}
	b.mu.Lock()
	clear(b.pending[:len(snap)])
	b.pending = b.pending[len(snap):]
	b.checkDrainedLocked()
	b.mu.Unlock()
	var msgs uint64
	for _, bt := range snap {
		msgs += uint64(len(bt.msgs))
		b.finish(bt, nil)
	}
	b.m.Confirmed.Add(msgs)
	return true
}

// recover waits for the connection (and in JetStream mode the stream),
// then re-sends every unconfirmed message in the original order and lets
// new publishes through again.
func (b *Bus) recover() {
	// A recovery right after the previous one means the cause persists
	// (a stream that refuses to answer): space them out.
	if time.Since(b.lastRecovered) < 2*time.Second {
		b.recoverBackoff = min(max(2*b.recoverBackoff, 50*time.Millisecond), 2*time.Second)
		t := time.NewTimer(b.recoverBackoff)
		select {
		case <-t.C:
		case <-b.stopCh:
			t.Stop()
			return
		}
	} else {
		b.recoverBackoff = 0
	}
	defer func() { b.lastRecovered = time.Now() }()
	backoff := 20 * time.Millisecond
	for {
		err := b.awaitUsable()
		if err == nil {
			b.wmu.Lock()
			err = b.resend()
			if err == nil {
				b.mu.Lock()
				b.recovering = false
				b.mu.Unlock()
			}
			b.wmu.Unlock()
			if err == nil {
				b.log.Info("unconfirmed messages re-sent")
				return
			}
		}
		b.log.Debug("re-send postponed", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-b.connected:
			t.Stop()
		case <-b.stopCh:
			t.Stop()
			return
		}
		backoff = min(2*backoff, time.Second)
	}
}

// awaitUsable returns nil once the connection is up and, in JetStream
// mode, the stream answers.
func (b *Bus) awaitUsable() error {
	for !b.nc.IsConnected() {
		select {
		case <-b.connected:
		case <-b.stopCh:
			return bridge.ErrClosed
		}
	}
	if b.js == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(b.base, b.o.FlushTimeout)
	defer cancel()
	s, err := b.js.Stream(ctx, b.o.JetStream.Stream)
	if err != nil {
		return fmt.Errorf("natsbus: stream %q not available: %w", b.o.JetStream.Stream, err)
	}
	b.capture.set(s.CachedInfo().Config.Subjects)
	return nil
}

// resend writes everything unconfirmed again, in order. Caller holds wmu.
func (b *Bus) resend() error {
	if b.js == nil {
		b.mu.Lock()
		snap := slices.Clone(b.pending)
		b.mu.Unlock()
		for _, bt := range snap {
			b.mu.Lock()
			bt.written = false
			b.mu.Unlock()
			if err := b.writeCore(bt); err != nil {
				return err
			}
			b.mu.Lock()
			bt.written = true
			b.mu.Unlock()
			b.m.Retried.Add(uint64(len(bt.msgs)))
		}
		return nil
	}
	b.mu.Lock()
	var atts []*nats.Msg
	for _, bt := range b.pending {
		if bt.done {
			continue
		}
		var idx []int
		for i, st := range bt.state {
			if st == lost {
				idx = append(idx, i)
			}
		}
		if len(idx) > 0 {
			atts = append(atts, b.registerLocked(bt, idx)...)
		}
	}
	b.mu.Unlock()
	b.m.Retried.Add(uint64(len(atts)))
	return b.writeJS(atts)
}
