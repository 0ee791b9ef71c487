package rc

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/gopcua/opcua/ua"
)

// EventKind says what happened to a reverse connection during admission.
type EventKind uint8

// The admission events. Every socket the Listener accepts ends in exactly
// one of Accepted, Rejected, Malformed, TimedOut, Evicted or Dropped (an
// admitted session that found no room in the Accept queue). Received comes
// first for every decoded ReverseHello. Dropped may also follow Accepted,
// for a queued session closed by Close or one a Broker never handed out.
const (
	// EventReceived: a well-formed ReverseHello arrived (not yet validated).
	EventReceived EventKind = iota + 1
	// EventAccepted: the ReverseHello passed validation and the Session was
	// queued for Accept.
	EventAccepted
	// EventRejected: the Validator or the EndpointUrl check refused the
	// ReverseHello, or a cap refused a new socket outright; an ERR frame was
	// sent.
	EventRejected
	// EventMalformed: the first message was not a valid ReverseHello, or the
	// peer closed before sending one. An ERR frame was sent unless the peer
	// closed without sending a byte.
	EventMalformed
	// EventTimedOut: no complete ReverseHello arrived before the
	// first-message deadline; the socket was closed without an ERR frame.
	EventTimedOut
	// EventEvicted: a pending socket was closed with Bad_TcpServerTooBusy to
	// make room for a newer one (Err wraps ErrTooBusy) or because the
	// Listener closed (Err wraps ErrListenerClosed).
	EventEvicted
	// EventDropped: an admitted Session was closed with Bad_TcpServerTooBusy
	// before anyone claimed it: the Accept queue stayed full, the Listener
	// closed, or a Broker's hold time or count ran out.
	EventDropped
)

// String returns the lower-case name of k, as used in logs.
func (k EventKind) String() string {
	switch k {
	case EventReceived:
		return "received"
	case EventAccepted:
		return "accepted"
	case EventRejected:
		return "rejected"
	case EventMalformed:
		return "malformed"
	case EventTimedOut:
		return "timed-out"
	case EventEvicted:
		return "evicted"
	case EventDropped:
		return "dropped"
	}
	return "unknown"
}

// Event describes one admission event.
type Event struct {
	Kind EventKind
	// Remote is the peer's address.
	Remote netip.AddrPort
	// ServerURI and EndpointURL are those of the ReverseHello, when one was
	// decoded.
	ServerURI   string
	EndpointURL string
	// Status is the status code of the ERR frame sent to the peer, or Good
	// when none was sent.
	Status ua.StatusCode
	// Err is the reason for Rejected, Malformed, TimedOut, Evicted and
	// Dropped events; errors.Is works with the package's sentinel errors,
	// and rejections of a decoded ReverseHello are a *HelloError.
	Err error
}

// Observer receives admission events, for metrics or tests.
//
// Observe is called synchronously from the goroutine handling the socket,
// concurrently for different sockets. It must not block and must be safe for
// concurrent use: a slow Observer slows admission down.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// reporter logs events and passes them to an optional Observer.
type reporter struct {
	log *slog.Logger
	obs Observer
}

func newReporter(log *slog.Logger, obs Observer) reporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return reporter{log: log, obs: obs}
}

// report logs e and hands it to the Observer. Admitted sessions that nobody
// claimed are logged at Warn (only allowed servers get there), accepted and
// rejected ones at Info (an operator may need to fix an allow-list), and
// what any peer can trigger at no cost (received, malformed, timed-out,
// evicted) at Debug, so that a flood of junk cannot flood the log.
func (r reporter) report(e Event) {
	level := slog.LevelDebug
	switch e.Kind {
	case EventAccepted, EventRejected:
		level = slog.LevelInfo
	case EventDropped:
		level = slog.LevelWarn
	}
	if r.log.Enabled(context.Background(), level) {
		attrs := []slog.Attr{slog.String("event", e.Kind.String()), slog.String("remote_addr", e.Remote.String())}
		if e.ServerURI != "" || e.EndpointURL != "" {
			attrs = append(attrs, slog.String("server_uri", e.ServerURI), slog.String("endpoint_url", e.EndpointURL))
		}
		if e.Status != ua.StatusOK {
			attrs = append(attrs, slog.String("status", statusName(e.Status)))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("err", e.Err.Error()))
		}
		r.log.LogAttrs(context.Background(), level, "reverse connection "+e.Kind.String(), attrs...)
	}
	if r.obs != nil {
		r.obs.Observe(e)
	}
}

// statusName returns the symbolic name of a status code, for logs.
func statusName(sc ua.StatusCode) string {
	if d, ok := ua.StatusCodes[sc]; ok {
		return d.Name
	}
	return sc.Error()
}
