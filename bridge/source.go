package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/mapping"
)

// Source opens OPC UA client sessions on the reverse connections of
// servers. The daemon wires package rcsource (rc's Broker and Factory);
// the bridge never sees sockets.
//
// Connect is called by one goroutine per server (its supervisor), never
// twice at once for the same server; calls for different servers run
// concurrently.
type Source interface {
	// Connect waits for the next reverse connection of serverURI and runs
	// a new client session on it: channel, CreateSession, ActivateSession.
	// It returns the active Client, or ctx.Err() when ctx ends first, or
	// the setup error (after which the supervisor calls Connect again, so a
	// failing server costs one socket per attempt, never a tight loop: the
	// server must dial again). Steps that need another connection (such as
	// discovery before a secure session) happen inside Connect.
	Connect(ctx context.Context, serverURI string) (Client, error)
}

// Client is one OPC UA client session as the bridge uses it. The session
// outlives its connection: after Done, Resume moves it onto the server's
// next reverse connection.
//
// Every method is safe for concurrent use. Service calls take a context
// that bounds them; they return an error for the call as a whole (the
// connection failed, a Bad service result) and report per-node outcomes as
// status codes. Only Close ends the session.
type Client interface {
	// Resolver gives the NamespaceArray and TranslateBrowsePaths, which
	// mapping.Resolve needs.
	mapping.Resolver

	// ReadVariableInfo reads what a command to each node must be coerced
	// to: DataType, its built-in type, ValueRank, the access levels and
	// the current value. It returns one VariableInfo per node, in order;
	// a node that cannot be read has a Bad Status.
	ReadVariableInfo(ctx context.Context, nodes []*ua.NodeID) ([]VariableInfo, error)

	// Write writes value to the Value attribute of node and returns the
	// node's status code (BadNotWritable, BadTypeMismatch, ...).
	// Specification: Part 4, 5.10.4.
	Write(ctx context.Context, node *ua.NodeID, value *ua.Variant) (ua.StatusCode, error)

	// Call calls method on object with args and returns the method's
	// result, with its own StatusCode. Specification: Part 4, 5.11.2.
	Call(ctx context.Context, object, method *ua.NodeID, args []*ua.Variant) (*ua.CallMethodResult, error)

	// Subscribe creates a subscription with the monitored items of spec
	// (split into CreateMonitoredItems calls by the server's limits) and
	// returns its id and one status per item, in order. A Bad item status
	// (BadNodeIdUnknown, BadTooManyMonitoredItems, ...) leaves that item
	// unmonitored; the error is for the subscription as a whole.
	// Specification: Part 4, 5.13.2 and 5.12.2.
	//
	// From then on every NotificationMessage of the subscription with data
	// changes is delivered on Notifications, and a message is acknowledged
	// to the server only once its Ack was called (the server keeps it for
	// Republish until then).
	Subscribe(ctx context.Context, spec SubscriptionSpec) (uint32, []ua.StatusCode, error)

	// Notifications delivers the data change notifications of every
	// subscription of the session, and the gaps, in the order the server
	// produced them per subscription, without duplicates. The channel is
	// the same for the whole session (across Resume) and is never closed:
	// stop reading when the session ends. The Client's queue behind it is
	// bounded: while nobody reads, the Client stops asking for more
	// (PublishRequests) and the server holds the data.
	Notifications() <-chan Notification

	// Done is closed when the current connection ends: the socket failed,
	// the server closed it, the publish loop stalled (the Client closes the
	// socket itself), or Close was called. After Resume, Done returns the
	// new connection's channel.
	Done() <-chan struct{}

	// Err says why Done is closed: nil while the connection is up.
	Err() error

	// Resume waits for the server's next reverse connection (until ctx is
	// done) and moves the session onto it: new channel, ActivateSession
	// with the same token, Republish of every unacknowledged message
	// (Part 4, 5.13.6). When the server lost the session, the Client
	// creates a new one, recreates every subscription made with Subscribe
	// (same items, same handles), reports each old subscription's loss as a
	// gap with Recreated set on Notifications, and returns
	// SessionRecreated. A recreated subscription may get the id of an old
	// one (a restarted server counts from 1 again); its sequence numbers
	// start again, and its first notifications may arrive before the gap. On error the session is
	// kept and Resume may be called again.
	Resume(ctx context.Context) (ResumeOutcome, error)

	// Close ends the session (CloseSession deleting its subscriptions) and
	// its connection, bounded by ctx, and returns when every goroutine of
	// the Client has returned.
	Close(ctx context.Context) error
}

// ResumeOutcome says what Resume did with the session.
type ResumeOutcome uint8

// The resume outcomes.
const (
	// SessionResumed: the same session carries on; nothing was lost.
	SessionResumed ResumeOutcome = iota + 1
	// SessionRecreated: the server had lost the session; a new one was
	// created and the subscriptions recreated. Data may have been lost; a
	// gap was reported.
	SessionRecreated
)

// String returns "resumed" or "recreated".
func (o ResumeOutcome) String() string {
	switch o {
	case SessionResumed:
		return "resumed"
	case SessionRecreated:
		return "recreated"
	}
	return fmt.Sprintf("ResumeOutcome(%d)", uint8(o))
}

// VariableInfo describes how a variable's value is typed: what a command
// value is coerced to. Specification: Part 3, 5.6.2 (Variable NodeClass).
type VariableInfo struct {
	// DataType is the DataType attribute.
	DataType *ua.NodeID
	// BuiltinType is the built-in type that encodes DataType, found by
	// walking the HasSubtype hierarchy; 0 when the Client could not tell
	// (abstract types such as Number).
	BuiltinType ua.TypeID
	// ValueRank is the ValueRank attribute.
	ValueRank int32
	// AccessLevel and UserAccessLevel are the access level bit masks
	// (Part 3, 8.57); UserAccessLevel applies to the session's user.
	AccessLevel, UserAccessLevel ua.AccessLevelType
	// Value is the current value, which types structures and abstract
	// DataTypes; nil when unknown.
	Value *ua.Variant
	// Status is Good, or why the node could not be read (BadNodeIdUnknown,
	// BadAttributeIdInvalid for a node that is not a variable).
	Status ua.StatusCode
}

// SubscriptionSpec is one subscription the bridge asks for.
type SubscriptionSpec struct {
	// PublishingInterval is the requested publishing interval.
	PublishingInterval time.Duration
	// Items are the monitored items, each with a client handle unique in
	// the session.
	Items []MonitoredItem
}

// MonitoredItem is one node to monitor for data changes. Specification:
// Part 4, 7.21 (MonitoringParameters) and 7.22.2 (DataChangeFilter).
type MonitoredItem struct {
	// Handle is the client handle: DataChange.Handle carries it back.
	Handle uint32
	// Node is the variable whose Value is monitored.
	Node *ua.NodeID
	// SamplingInterval is the requested sampling interval; 0 asks for the
	// subscription's publishing interval, mapping.SampleFastest for the
	// server's fastest practical rate.
	SamplingInterval time.Duration
	// QueueSize is the server-side queue of the item (0 means 1); the
	// oldest value is discarded when it overflows.
	QueueSize uint32
	// Deadband is the data change filter's deadband.
	Deadband mapping.Deadband
}

// Notification is one NotificationMessage of a subscription with its data
// changes (Part 4, 7.21), or a gap: Lost set and no Changes.
type Notification struct {
	// Subscription is the SubscriptionId.
	Subscription uint32
	// Sequence is the NotificationMessage's SequenceNumber; 0 for a gap.
	Sequence uint32
	// PublishTime is the time the server sent the message.
	PublishTime time.Time
	// Changes are the data changes, in the server's order.
	Changes []DataChange
	// Republished is set when the message came from Republish after a
	// connection loss (Part 4, 5.13.6) rather than from Publish.
	Republished bool
	// Lost, when non-zero, reports NotificationMessages that can no longer
	// be delivered (the server lost the session, or dropped them before
	// Republish).
	Lost Gap
	// Ack acknowledges the message to the server with a later
	// PublishRequest (Part 4, 5.13.5). It never blocks, may be called from
	// any goroutine, more than once (later calls do nothing) and after the
	// session ended (then it does nothing). Nil for a gap.
	Ack func()
}

// DataChange is one MonitoredItemNotification.
type DataChange struct {
	// Handle is the MonitoredItem's client handle.
	Handle uint32
	// Value is the new value with status and timestamps.
	Value *ua.DataValue
}

// Gap is a range of NotificationMessages of one subscription that were
// lost: sequence numbers From through To. From and To are 0 when the range
// is unknown (a recreated session knows only that something was lost).
type Gap struct {
	From, To uint32
	// Recreated says the session was recreated: the subscription is gone
	// and a new one (with a new id, or a reused one) carries its items.
	Recreated bool
	// Reason says why ("session recreated", "not available for republish").
	Reason string
}

// IsZero reports whether g reports no loss.
func (g Gap) IsZero() bool { return g == Gap{} }
