package rc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ClientState is the state of a Client: its session and the connection it
// runs on.
type ClientState uint8

// The client states.
const (
	// StateActive: the session is active on a live connection. Build
	// returns a Client in this state.
	StateActive ClientState = iota + 1
	// StateDisconnected: the connection ended (the socket failed, the
	// server closed it, or the stall watchdog closed it); the session is
	// kept for Resume. Done is closed.
	StateDisconnected
	// StateResuming: Resume is moving the session onto a new connection.
	StateResuming
	// StateClosed: Close was called. Final.
	StateClosed
)

// String returns the state's lower-case name.
func (s ClientState) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateDisconnected:
		return "disconnected"
	case StateResuming:
		return "resuming"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ClientState(%d)", uint8(s))
}

// ClientEventKind is the kind of a ClientEvent.
type ClientEventKind uint8

// The client events. Active, Disconnected, PublishStalled, Resuming,
// Resumed, ResumeFailed and Closed change the client's state (see
// ClientEvent.State); PublishGap, PublishRecreated and PublishTransferred
// report what the publish engine did to a subscription.
const (
	// PublishStalled: the stall watchdog closed the connection because the
	// server stopped answering Publish requests (Err wraps ErrStalled and
	// ErrConnectionLost); state Disconnected. Hand the server's next
	// connection to Resume.
	PublishStalled ClientEventKind = iota + 1
	// PublishGap: notifications FirstLost..LastLost of subscription
	// SubscriptionID are lost for good (LastLost 0: up to the moment the
	// subscription was recreated). Nothing else is ever skipped silently.
	PublishGap
	// PublishRecreated: the server lost the session and its subscriptions;
	// subscription SubscriptionID was created again with its monitored
	// items, their parameters and monitoring modes, under the id
	// NewSubscriptionID.
	PublishRecreated
	// PublishTransferred: the server lost the session but subscription
	// SubscriptionID was transferred to the new session (Part 4, 5.13.7);
	// nothing was lost beyond what PublishGap reports.
	PublishTransferred
	// ClientActive: Build activated the session; state Active.
	ClientActive
	// ClientDisconnected: the connection ended without Close (Err wraps
	// ErrConnectionLost and says why); state Disconnected. A connection
	// closed by the stall watchdog is reported as PublishStalled instead.
	ClientDisconnected
	// ClientResuming: Resume started with a new connection; state Resuming.
	// (A Resume refused before it starts — closed client, another server's
	// connection, not a TCP socket — reports nothing.)
	ClientResuming
	// ClientResumed: Resume moved the session onto the new connection;
	// Outcome says whether the server still had the session
	// (SessionResumed) or a new one was created (SessionRecreated, followed
	// by PublishTransferred or PublishRecreated per subscription once the
	// engine has dealt with them). State Active.
	ClientResumed
	// ClientResumeFailed: Resume failed (Err); the session is kept for the
	// next attempt. State Disconnected, or Active if the previous
	// connection is still up.
	ClientResumeFailed
	// ClientClosed: Close was called. Err is nil when the session was
	// closed on the server, else why not (for example the connection was
	// already lost: the server keeps the session until it times out).
	// State Closed; no event follows.
	ClientClosed
)

// String returns the kind's lower-case name.
func (k ClientEventKind) String() string {
	switch k {
	case PublishStalled:
		return "stalled"
	case PublishGap:
		return "gap"
	case PublishRecreated:
		return "recreated"
	case PublishTransferred:
		return "transferred"
	case ClientActive:
		return "active"
	case ClientDisconnected:
		return "disconnected"
	case ClientResuming:
		return "resuming"
	case ClientResumed:
		return "resumed"
	case ClientResumeFailed:
		return "resume-failed"
	case ClientClosed:
		return "closed"
	}
	return "unknown"
}

// ClientEvent is one event of a Client, delivered to
// ClientConfig.OnClientEvent.
type ClientEvent struct {
	Kind ClientEventKind
	// State is the client's state after the event.
	State ClientState
	// Client is the client the event is about (several clients share a
	// Factory's configuration).
	Client *Client
	// Time is when the event happened.
	Time time.Time
	// Outcome is what Resume did (ClientResumed).
	Outcome ResumeOutcome
	// SubscriptionID is the subscription of PublishGap, PublishRecreated
	// and PublishTransferred; NewSubscriptionID its id after
	// PublishRecreated.
	SubscriptionID    uint32
	NewSubscriptionID uint32
	// FirstLost..LastLost is the range of sequence numbers lost
	// (PublishGap); LastLost 0 means up to the recreation.
	FirstLost uint32
	LastLost  uint32
	// Err says why, for PublishStalled, ClientDisconnected,
	// ClientResumeFailed and a ClientClosed that did not close the session.
	Err error
	// Missed counts the events dropped between the previous event the
	// callback got and this one, because it fell 256 events behind.
	Missed uint64
}

// logAttrs are the event's non-zero fields for a log line.
func (ev ClientEvent) logAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("event", ev.Kind.String()), slog.String("state", ev.State.String())}
	if ev.Outcome != 0 {
		attrs = append(attrs, slog.String("outcome", ev.Outcome.String()))
	}
	if ev.SubscriptionID != 0 {
		attrs = append(attrs, slog.Uint64("subscription", uint64(ev.SubscriptionID)))
	}
	if ev.NewSubscriptionID != 0 {
		attrs = append(attrs, slog.Uint64("new_subscription", uint64(ev.NewSubscriptionID)))
	}
	if ev.Kind == PublishGap {
		attrs = append(attrs, slog.Uint64("first_lost", uint64(ev.FirstLost)), slog.Uint64("last_lost", uint64(ev.LastLost)))
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.Any("err", ev.Err))
	}
	return attrs
}

// maxQueuedEvents bounds the events waiting for a slow callback; beyond
// it the oldest are dropped and counted in the next event's Missed.
const maxQueuedEvents = 256

// State returns the client's current state. It agrees with the events
// delivered so far plus those still queued for the callback.
func (c *Client) State() ClientState {
	c.track.mu.Lock()
	defer c.track.mu.Unlock()
	return c.track.state
}

// tracker keeps a client's state and hands its events to the callback in
// order, from one goroutine at a time that runs only while events are
// queued: emitting never blocks on the callback.
type tracker struct {
	mu      sync.Mutex
	state   ClientState // 0 until Build emits ClientActive
	queue   []ClientEvent
	running chan struct{} // closed when the delivering goroutine returns; nil when none runs
}

// emit records ev and queues it for the callbacks. It returns without
// waiting for them. Events before ClientActive (a Build in progress) and
// after ClientClosed are not reported.
func (c *Client) emit(ev ClientEvent) {
	c.track.mu.Lock()
	defer c.track.mu.Unlock()
	c.emitLocked(ev)
}

// emitLocked is emit with c.track.mu held.
func (c *Client) emitLocked(ev ClientEvent) {
	t := &c.track
	if t.state == StateClosed || (t.state == 0 && ev.Kind != ClientActive) {
		return
	}
	ev.Client, ev.Time = c, time.Now()
	switch ev.Kind {
	case ClientActive, ClientResumed:
		t.state = StateActive
	case ClientDisconnected, PublishStalled:
		t.state = StateDisconnected
	case ClientResuming:
		t.state = StateResuming
	case ClientResumeFailed:
		t.state = StateDisconnected
		if c.ch.Load().err() == nil {
			t.state = StateActive
		}
	case ClientClosed:
		t.state = StateClosed
	}
	ev.State = t.state
	c.log.LogAttrs(context.Background(), slog.LevelInfo, "client event", ev.logAttrs()...)
	if c.cfg.OnClientEvent == nil {
		return
	}
	if len(t.queue) == maxQueuedEvents {
		// Drop the oldest; the next one delivered counts it.
		t.queue[1].Missed += 1 + t.queue[0].Missed
		c.log.Warn("client event dropped: the event callback is too slow", "event", t.queue[0].Kind.String(), "queued", maxQueuedEvents)
		t.queue[0] = ClientEvent{}
		t.queue = t.queue[1:]
	}
	t.queue = append(t.queue, ev)
	if t.running == nil {
		done := make(chan struct{})
		t.running = done
		go c.deliverEvents(done)
	}
}

// deliverEvents calls the callbacks with the queued events in order and
// returns when the queue is empty.
func (c *Client) deliverEvents(done chan struct{}) {
	defer close(done)
	t := &c.track
	for {
		t.mu.Lock()
		if len(t.queue) == 0 {
			t.running = nil
			t.mu.Unlock()
			return
		}
		ev := t.queue[0]
		t.queue[0] = ClientEvent{}
		t.queue = t.queue[1:]
		t.mu.Unlock()
		c.cfg.OnClientEvent(ev)
	}
}

// awaitEvents waits until the queued events are delivered or ctx ends.
func (c *Client) awaitEvents(ctx context.Context) {
	c.track.mu.Lock()
	running := c.track.running
	c.track.mu.Unlock()
	if running == nil {
		return
	}
	select {
	case <-running:
	case <-ctx.Done():
		c.log.Warn("client event callback still running after Close's deadline")
	}
}

// channelLost is called by a channel of the client that ended without
// being closed, before its Done channel closes. Only the current channel
// changes the state: a channel that Resume is still setting up or has
// replaced does not.
func (c *Client) channelLost(ch *channel, cause error) {
	c.track.mu.Lock()
	defer c.track.mu.Unlock()
	ch.lostCause = cause
	c.reportLostLocked(ch)
}

// reportLostLocked reports the loss of ch once, if ch is the current
// channel and was lost; c.track.mu held.
func (c *Client) reportLostLocked(ch *channel) {
	if ch.lostCause == nil || ch.lostReported || c.ch.Load() != ch || c.track.state == 0 {
		return
	}
	ch.lostReported = true
	kind := ClientDisconnected
	if errors.Is(ch.lostCause, ErrStalled) {
		kind = PublishStalled
	}
	c.emitLocked(ClientEvent{Kind: kind, Err: ch.lostCause})
}

// activated reports ClientActive at the end of Build, and the loss of the
// connection if it ended meanwhile.
func (c *Client) activated() {
	c.track.mu.Lock()
	defer c.track.mu.Unlock()
	c.emitLocked(ClientEvent{Kind: ClientActive})
	c.reportLostLocked(c.ch.Load())
}

// swapChannel makes ch the current channel and reports ClientResumed, and
// the loss of ch if it ended already. It returns the previous channel.
func (c *Client) swapChannel(ch *channel, outcome ResumeOutcome) *channel {
	c.track.mu.Lock()
	defer c.track.mu.Unlock()
	old := c.ch.Swap(ch)
	c.emitLocked(ClientEvent{Kind: ClientResumed, Outcome: outcome})
	c.reportLostLocked(ch)
	return old
}
