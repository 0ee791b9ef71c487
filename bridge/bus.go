package bridge

import (
	"context"
	"errors"
	"strconv"
)

// Errors reported by bus adapters. Adapters wrap them with context; callers
// test with errors.Is.
var (
	// ErrClosed reports that the bus adapter was closed: the call was not
	// carried out, or the batch was not confirmed before Close gave up.
	ErrClosed = errors.New("bridge: bus closed")
	// ErrNotConnected reports that the adapter has no working connection to
	// its broker right now.
	ErrNotConnected = errors.New("bridge: bus not connected")
	// ErrStalled reports that the oldest unconfirmed batch has waited longer
	// than the adapter's stall limit although the connection looks up.
	ErrStalled = errors.New("bridge: bus confirmations stalled")
	// ErrInvalidMessage reports a message the adapter refuses before sending
	// anything: an empty or malformed route, a QoS above 2, a payload the
	// broker would reject.
	ErrInvalidMessage = errors.New("bridge: invalid bus message")
	// ErrInvalidRoute reports a command route that cannot be subscribed:
	// empty, or containing wildcards or characters the bus does not allow.
	ErrInvalidRoute = errors.New("bridge: invalid command route")
	// ErrNoReply reports that a command carries no way to answer it (for
	// example a NATS message published without a reply subject).
	ErrNoReply = errors.New("bridge: command has no reply route")
)

// QoS is the MQTT delivery level of one message. NATS adapters ignore it:
// their guarantee is set by the adapter's mode (core or JetStream).
// Specification: MQTT 3.1.1, 4.3.
type QoS uint8

// The MQTT delivery levels.
const (
	// AtMostOnce is QoS 0: the message is written to the socket once.
	AtMostOnce QoS = 0
	// AtLeastOnce is QoS 1: confirmed by PUBACK, may be delivered twice.
	AtLeastOnce QoS = 1
	// ExactlyOnce is QoS 2: confirmed by PUBCOMP.
	ExactlyOnce QoS = 2
)

// Valid reports whether q is 0, 1 or 2.
func (q QoS) Valid() bool { return q <= ExactlyOnce }

// MsgID identifies one published message so that the bus can discard a
// copy published again after a reconnect: the change at position Index of
// the NotificationMessage with sequence number Sequence of subscription
// Subscription on server Server. Its text form
// `<server>/<subscription>/<sequence>/<index>` is the JetStream Nats-Msg-Id.
// The zero MsgID means "no de-duplication" (presence, gap events).
type MsgID struct {
	Server       string // the server key as used in routes, never empty in a non-zero MsgID
	Subscription uint32 // OPC UA SubscriptionId
	Sequence     uint32 // NotificationMessage SequenceNumber (Part 4, 7.21)
	Index        uint32 // position of the change inside the NotificationMessage
}

// IsZero reports whether id is the zero MsgID.
func (id MsgID) IsZero() bool { return id == MsgID{} }

// AppendText appends the text form of id to b. The zero MsgID appends nothing.
func (id MsgID) AppendText(b []byte) ([]byte, error) {
	if id.IsZero() {
		return b, nil
	}
	b = append(b, id.Server...)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(id.Subscription), 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(id.Sequence), 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(id.Index), 10)
	return b, nil
}

// String returns the text form `<server>/<subscription>/<sequence>/<index>`,
// or "" for the zero MsgID.
func (id MsgID) String() string {
	if id.IsZero() {
		return ""
	}
	b, _ := id.AppendText(make([]byte, 0, len(id.Server)+33))
	return string(b)
}

// Message is one message for the bus, fully rendered by the mapping package.
type Message struct {
	// Route is the NATS subject or MQTT topic, literal (no wildcards).
	Route string
	// Payload is the encoded message body.
	Payload []byte
	// ID de-duplicates the message on buses that can (JetStream).
	ID MsgID
	// QoS is the MQTT delivery level; NATS adapters ignore it.
	QoS QoS
	// Retain asks an MQTT broker to keep the message as the topic's last
	// value; NATS adapters ignore it.
	Retain bool
}

// ConfirmFunc is called by a Publisher exactly once per accepted batch:
// with nil when the bus confirmed every message of the batch, or with an
// error (wrapping ErrClosed, or a permanent rejection by the broker) when
// the adapter gave up on it. It runs on an adapter goroutine and must not
// block: hand the result to a queue or set a flag.
type ConfirmFunc func(err error)

// Publisher puts batches of messages on the bus and reports when the bus
// confirmed them. The bridge acknowledges a NotificationMessage to the OPC
// UA server only after its batch was confirmed (DESIGN decision 3).
//
// What "confirmed" means depends on the adapter: a JetStream PubAck for
// every message, an MQTT PUBACK (QoS 1) or PUBCOMP (QoS 2) for every
// message and the socket write for QoS 0, or for core NATS a PING/PONG
// round trip after the batch on the same connection.
//
// Implementations are safe for concurrent use by many goroutines (one per
// OPC UA session) and keep many batches in flight at once; confirmation
// round trips are shared between batches, never one per message.
type Publisher interface {
	// Publish sends batch in order and returns once the adapter has taken
	// it; confirm is called later, exactly once, if and only if Publish
	// returns nil. Messages of one batch, and of batches published one
	// after the other by one goroutine, reach each route in that order.
	//
	// Publish blocks while the adapter's bounded in-flight window is full
	// (backpressure), until ctx is done; while the broker is unreachable
	// the window holds the batches and they are sent after the reconnect,
	// in order, after everything older. It returns an error wrapping
	// ErrInvalidMessage for a message it refuses (nothing of the batch is
	// sent), ErrClosed after Close, or ctx.Err().
	//
	// The adapter owns batch and every Payload from the call until confirm
	// runs: the caller must not modify or reuse them before that. While a
	// batch is unconfirmed the adapter re-sends it as needed after
	// reconnects (with the same MsgIDs), so a message may reach the bus
	// twice but is not lost while the process lives.
	Publish(ctx context.Context, batch []Message, confirm ConfirmFunc) error
}

// PresencePublisher publishes the presence of OPC UA servers (DESIGN
// decision 9). Implementations are safe for concurrent use.
type PresencePublisher interface {
	// PublishPresence records p as the current presence for p.Key and
	// publishes it on p.Route: retained on MQTT; on NATS as a message and,
	// when JetStream is on, as the value of p.Key in the presence KV
	// bucket. The adapter publishes the latest presence of every key again
	// after each reconnect, so a broker that lost its retained state is
	// repaired. It blocks until the broker confirmed it or ctx is done; an
	// error wrapping ErrNotConnected still leaves p recorded for the next
	// reconnect.
	PublishPresence(ctx context.Context, p Presence) error
}

// ReplyFunc sends the answer to one command. It is safe to call from any
// goroutine, should be called at most once, and blocks until the answer
// was handed to the broker (and confirmed where the bus confirms) or ctx
// is done.
type ReplyFunc func(ctx context.Context, payload []byte) error

// Command is one command received from the bus. The handler owns Payload.
type Command struct {
	// Route is the literal route the command arrived on: the NATS
	// subject, or the MQTT topic (`<topic>/set`, `<topic>/call`). For a
	// command delivered by a filter it is the route that matched, not the
	// filter.
	Route string
	// Payload is the request body as received.
	Payload []byte

	reply ReplyFunc
}

// NewCommand returns a Command for adapters; reply may be nil when the
// transport gave no way to answer.
func NewCommand(route string, payload []byte, reply ReplyFunc) Command {
	return Command{Route: route, Payload: payload, reply: reply}
}

// Reply answers the command: a NATS reply to the request's reply subject,
// or on MQTT a message on `<route>/result` (mapping's ResultRoute). The
// payload carries the request's correlation id; the adapter sends it
// unchanged. It returns an error wrapping ErrNoReply when the command
// cannot be answered.
func (c Command) Reply(ctx context.Context, payload []byte) error {
	if c.reply == nil {
		return ErrNoReply
	}
	return c.reply(ctx, payload)
}

// CommandHandler receives commands. It is called from a single adapter
// goroutine per CommandSource, one command at a time, and must not block:
// it should validate cheaply and hand the command to a bounded queue.
// While it runs, further commands wait in the adapter's bounded command
// queue; when that queue is full, newly arriving commands are dropped and
// counted (BusMetrics.CommandsDropped) without a reply.
type CommandHandler func(Command)

// CommandSource delivers commands that arrive on the bus. Implementations
// are safe for concurrent use.
type CommandSource interface {
	// Subscribe starts delivering commands arriving on routes to h until
	// the returned Subscription is ended or the adapter is closed. Routes
	// are command routes as the mapping renders them: NATS subjects, or
	// MQTT topics such as `<topic>/set`. A route may also be a filter
	// (mapping.Table.CommandFilters) whose tokens may be the single-level
	// wildcard ("*" on NATS, "+" on MQTT) as a whole token, except the
	// last one; multi-level wildcards are refused. A filter delivers every
	// command on a matching route; a literal route of the same call that
	// a filter matches is delivered by the filter, so that every command
	// reaches h once. The adapter re-subscribes after every reconnect. It
	// returns an error wrapping ErrInvalidRoute (quoting the route) before
	// subscribing anything if a route is unusable, two routes of the call
	// are equal or are overlapping filters, or a route overlaps a route of
	// another active Subscription; it returns only after the broker
	// accepted every subscription or ctx is done.
	Subscribe(ctx context.Context, routes []string, h CommandHandler) (Subscription, error)
}

// Subscription is the handle of a CommandSource.Subscribe call.
type Subscription interface {
	// Unsubscribe stops the delivery; after it returns the handler is not
	// called again. It is idempotent and safe for concurrent use.
	Unsubscribe(ctx context.Context) error
}

// Health reports whether a bus adapter can do its job, for /readyz.
type Health interface {
	// Ready returns nil when the adapter is connected and confirmations
	// flow; otherwise an error wrapping ErrNotConnected, ErrStalled or
	// ErrClosed that says why. It never blocks and is safe for concurrent
	// use.
	Ready() error
}

// Bus is everything the bridge needs from one bus adapter. The daemon
// creates it (natsbus.New, mqttbus.New), hands it to the bridge, and
// closes it last.
type Bus interface {
	Publisher
	PresencePublisher
	CommandSource
	Health
	// Close stops accepting work, waits until every batch in flight is
	// confirmed or ctx is done, publishes the bridge's own status as
	// offline where configured, disconnects, and joins every goroutine the
	// adapter started. Batches still unconfirmed get ErrClosed; if ctx
	// ended first, Close returns an error wrapping ctx.Err().
	Close(ctx context.Context) error
}
