package rc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Listener defaults, used for zero fields of ListenerConfig.
const (
	// DefaultHandshakeTimeout is the first-message deadline.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxPending caps sockets still in their handshake, in total.
	DefaultMaxPending = 64
	// DefaultMaxPendingPerSource caps them per source address.
	DefaultMaxPendingPerSource = 8
	// DefaultAcceptQueue is the number of admitted sessions waiting for
	// Accept.
	DefaultAcceptQueue = 16
)

const (
	// errorWriteTimeout bounds writing an ERR frame. The frame is tiny and
	// goes into an empty socket buffer, so only a broken socket waits.
	errorWriteTimeout = time.Second
	// closeLinger and maxLingerBytes bound the drain before closing a
	// rejected socket (see lingerClose).
	closeLinger    = 250 * time.Millisecond
	maxLingerBytes = 64 << 10
	// maxAcceptBackoff caps the pause after a failing net.Listener.Accept
	// (for example when out of file descriptors).
	maxAcceptBackoff = time.Second
)

// ErrInvalidConfig means a ListenerConfig, BrokerConfig or ClientConfig
// field is out of range.
var ErrInvalidConfig = errors.New("rc: invalid config")

// ListenerConfig configures a Listener. Zero fields take the defaults.
type ListenerConfig struct {
	// Validator decides which ReverseHellos are admitted. Required: there is
	// no accept-all default. Use an *AllowList or the bridge's own.
	Validator Validator
	// HandshakeTimeout is the first-message deadline: a socket that has not
	// delivered a complete ReverseHello this long after it connected is
	// closed. An admitted session also waits at most this long for room in
	// the Accept queue. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxHelloSize caps the declared size of the ReverseHello, between
	// MinHelloSize and DefaultMaxHelloSize (the default).
	MaxHelloSize int
	// MaxPending caps the sockets in their handshake, in total. Default
	// DefaultMaxPending.
	MaxPending int
	// MaxPendingPerSource caps them per source address (IPv4 address or
	// IPv6 /64). Default DefaultMaxPendingPerSource.
	MaxPendingPerSource int
	// AcceptQueue is how many admitted sessions wait for Accept. Default
	// DefaultAcceptQueue.
	AcceptQueue int
	// Observer, if not nil, receives every admission event. It must not
	// block.
	Observer Observer
	// Logger receives admission logs with server_uri and remote_addr
	// attributes. Nil discards them.
	Logger *slog.Logger
}

// Validate reports every field out of range, each wrapping ErrInvalidConfig.
// It does not modify c.
func (c ListenerConfig) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: ListenerConfig.%s = %v: %s", ErrInvalidConfig, field, v, want))
	}
	if c.Validator == nil {
		bad("Validator", nil, "required (use an AllowList)")
	}
	if c.HandshakeTimeout < 0 {
		bad("HandshakeTimeout", c.HandshakeTimeout, "must not be negative")
	}
	if c.MaxHelloSize != 0 && (c.MaxHelloSize < MinHelloSize || c.MaxHelloSize > DefaultMaxHelloSize) {
		bad("MaxHelloSize", c.MaxHelloSize, fmt.Sprintf("must be within [%d, %d]", MinHelloSize, DefaultMaxHelloSize))
	}
	if c.MaxPending < 0 {
		bad("MaxPending", c.MaxPending, "must not be negative")
	}
	if c.MaxPendingPerSource < 0 {
		bad("MaxPendingPerSource", c.MaxPendingPerSource, "must not be negative")
	}
	if c.AcceptQueue < 0 {
		bad("AcceptQueue", c.AcceptQueue, "must not be negative")
	}
	return errors.Join(errs...)
}

func (c ListenerConfig) withDefaults() ListenerConfig {
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxHelloSize == 0 {
		c.MaxHelloSize = DefaultMaxHelloSize
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxPendingPerSource == 0 {
		c.MaxPendingPerSource = DefaultMaxPendingPerSource
	}
	if c.AcceptQueue == 0 {
		c.AcceptQueue = DefaultAcceptQueue
	}
	return c
}

// Listener accepts reverse connections and admits those whose ReverseHello
// passes the checks: framing (ReadHello), EndpointUrl (CheckEndpointURL) and
// the configured Validator. Each socket is handled by its own goroutine, so
// a slow or silent peer never delays others; the pending-socket caps and
// the eviction policy of pendingPool bound the work and keep room for
// legitimate servers. Rejected sockets get an ERR frame (status from
// StatusFor) and are closed. Admitted sessions wait in a bounded queue for
// Accept.
//
// All methods are safe for concurrent use.
type Listener struct {
	cfg   ListenerConfig
	ln    *net.TCPListener
	rep   reporter
	queue chan *Session
	done  chan struct{}

	wg        sync.WaitGroup // accept loop and handshake goroutines
	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex
	pool   *pendingPool // guarded by mu
	closed bool         // guarded by mu
}

// Listen starts listening for reverse connections on the TCP address addr
// ("127.0.0.1:4840", ":0"...). ctx bounds only the listen call itself, as in
// net.ListenConfig: the Listener runs until Close.
func Listen(ctx context.Context, addr string, cfg ListenerConfig) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rc: listen on %q: %w", addr, err)
	}
	l := &Listener{
		cfg:   cfg,
		ln:    ln.(*net.TCPListener),
		rep:   newReporter(cfg.Logger, cfg.Observer),
		queue: make(chan *Session, cfg.AcceptQueue),
		done:  make(chan struct{}),
		pool:  newPendingPool(),
	}
	l.rep.log = l.rep.log.With("listen_addr", ln.Addr().String())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept waits for the next admitted session. The caller owns the returned
// Session and must close its Conn. Accept returns ErrListenerClosed after
// Close, and ctx.Err() when ctx is done first.
func (l *Listener) Accept(ctx context.Context) (*Session, error) {
	select {
	case <-l.done:
		return nil, ErrListenerClosed
	default:
	}
	select {
	case s := <-l.queue:
		return s, nil
	case <-l.done:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops listening, sends Bad_TcpServerTooBusy to every pending socket
// and every queued session that nobody accepted, closes them, and returns
// once all of the Listener's goroutines have ended. Sessions already
// returned by Accept are not touched. Close is idempotent; it returns the
// error of closing the listening socket, if any.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		marked := l.pool.markAll(ErrListenerClosed)
		l.mu.Unlock()
		close(l.done)
		l.closeErr = l.ln.Close()
		for _, p := range marked {
			wake(p.conn)
		}
		l.wg.Wait()
		// No goroutine sends to the queue any more: drain it (a racing
		// Accept may still take a session, which is fine).
		for drained := false; !drained; {
			select {
			case s := <-l.queue:
				dropSession(l.rep, s, ErrListenerClosed)
			default:
				drained = true
			}
		}
	})
	return l.closeErr
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), maxAcceptBackoff)
			l.rep.log.Warn("accept failed, pausing", "err", err, "pause", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-l.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		l.admit(c)
	}
}

// admit gives a fresh socket a pending slot (evicting another if a cap
// requires it) and starts its handshake goroutine, or refuses it with
// Bad_TcpServerTooBusy.
func (l *Listener) admit(c *net.TCPConn) {
	_ = c.SetNoDelay(true)
	now := time.Now()
	remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	p := &pendingConn{conn: c, remote: remote, source: sourceOf(remote.Addr()), since: now}
	// The deadline is set before the socket is visible to eviction, which
	// may move it to the past.
	_ = c.SetReadDeadline(now.Add(l.cfg.HandshakeTimeout))

	l.mu.Lock()
	refusal := ErrListenerClosed
	var victim *pendingConn
	ok := false
	if !l.closed {
		refusal = fmt.Errorf("%w: no pending socket can be evicted", ErrTooBusy)
		victim, ok = l.pool.add(p, l.cfg.MaxPending, l.cfg.MaxPendingPerSource)
	}
	if ok {
		l.wg.Add(1)
	}
	l.mu.Unlock()

	if !ok {
		l.rep.refuse(c, Event{Kind: EventRejected, Remote: remote, Err: refusal})
		return
	}
	if victim != nil {
		wake(victim.conn)
	}
	go l.handshake(p)
}

// handshake reads, checks and hands off one socket. It owns p.conn unless it
// hands the Session off.
func (l *Listener) handshake(p *pendingConn) {
	defer l.wg.Done()
	h, err := ReadHello(p.conn, l.cfg.MaxHelloSize)

	l.mu.Lock()
	evicted := p.evicted
	if evicted == nil && err == nil {
		p.state = stateAdmitting
	}
	l.mu.Unlock()

	switch {
	case evicted != nil:
		l.finish(p)
		err := fmt.Errorf("%w: after %v pending", evicted, time.Since(p.since).Round(time.Millisecond))
		l.rep.refuse(p.conn, Event{Kind: EventEvicted, Remote: p.remote, Err: err})
	case err != nil:
		l.handshakeFailed(p, err)
	default:
		l.rep.report(Event{Kind: EventReceived, Remote: p.remote, ServerURI: h.ServerURI, EndpointURL: h.EndpointURL})
		if err := validate(l.cfg.Validator, h); err != nil {
			// The whole frame was read and a server sends nothing more
			// before the client's Hello: close at once.
			l.finish(p)
			l.rep.refuse(p.conn, Event{Kind: EventRejected, Remote: p.remote, ServerURI: h.ServerURI, EndpointURL: h.EndpointURL, Err: err})
			return
		}
		l.handOff(p, &Session{ServerURI: h.ServerURI, EndpointURL: h.EndpointURL, Conn: p.conn})
	}
}

// handshakeFailed handles a socket whose first message did not decode.
func (l *Listener) handshakeFailed(p *pendingConn, err error) {
	ev := Event{Kind: EventMalformed, Remote: p.remote, Err: err}
	switch {
	case isDecodeError(err):
		l.rejectMalformed(p, ev)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		ev.Kind = EventTimedOut
		ev.Err = fmt.Errorf("%w (%v): %w", ErrHandshakeTimeout, l.cfg.HandshakeTimeout, err)
	default:
		// The peer closed or reset the socket before sending a byte:
		// nobody is left to read an ERR frame.
	}
	l.finish(p)
	_ = p.conn.Close()
	l.rep.report(ev)
}

// rejectMalformed sends the ERR frame for ev.Err and closes p.conn after a
// bounded drain of the rest of the bad frame (see lingerClose), during which
// the socket keeps its pending slot but may be evicted.
func (l *Listener) rejectMalformed(p *pendingConn, ev Event) {
	ev.Status = StatusFor(ev.Err)
	sendError(p.conn, ev.Status, ev.Err)
	l.mu.Lock()
	if p.evicted == nil {
		p.state = stateClosing
		_ = p.conn.SetReadDeadline(time.Now().Add(closeLinger))
	}
	l.mu.Unlock()
	l.rep.report(ev)
	lingerClose(p.conn)
	l.finish(p)
}

// handOff queues s for Accept, waiting at most HandshakeTimeout for room.
func (l *Listener) handOff(p *pendingConn, s *Session) {
	_ = p.conn.SetReadDeadline(time.Time{})
	ev := Event{Kind: EventAccepted, Remote: p.remote, ServerURI: s.ServerURI, EndpointURL: s.EndpointURL}
	select {
	case l.queue <- s:
		l.finish(p)
		l.rep.report(ev)
		return
	default:
	}
	t := time.NewTimer(l.cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case l.queue <- s:
		l.finish(p)
		l.rep.report(ev)
	case <-t.C:
		l.finish(p)
		dropSession(l.rep, s, fmt.Errorf("%w: nobody accepted within %v", ErrAcceptQueueFull, l.cfg.HandshakeTimeout))
	case <-l.done:
		l.finish(p)
		dropSession(l.rep, s, ErrListenerClosed)
	}
}

// finish releases p's pending slot.
func (l *Listener) finish(p *pendingConn) {
	l.mu.Lock()
	l.pool.remove(p)
	l.mu.Unlock()
}

// dropSession closes an admitted session nobody claimed, with
// Bad_TcpServerTooBusy, and reports EventDropped.
func dropSession(rep reporter, s *Session, err error) {
	ev := Event{Kind: EventDropped, ServerURI: s.ServerURI, EndpointURL: s.EndpointURL, Err: err}
	if a, ok := s.Conn.RemoteAddr().(*net.TCPAddr); ok {
		ev.Remote = a.AddrPort()
	}
	rep.refuse(s.Conn, ev)
}

// refuse sends the ERR frame for ev.Err (status from StatusFor), closes c
// and reports ev.
func (r reporter) refuse(c net.Conn, ev Event) {
	ev.Status = StatusFor(ev.Err)
	sendError(c, ev.Status, ev.Err)
	_ = c.Close()
	r.report(ev)
}

// sendError writes an ERR frame with a short deadline; failures are
// ignored, as the socket is closed next anyway.
func sendError(c net.Conn, status ua.StatusCode, reason error) {
	_ = c.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
	_ = WriteErrorFrame(c, status, reason.Error())
}

// lingerClose closes a rejected socket gracefully: it sends FIN after the
// ERR frame, then discards what the peer still sends (at most
// maxLingerBytes, until the read deadline set by the caller) before closing.
// Closing with unread input would make the kernel send RST at once, which
// can destroy the ERR frame before the peer reads it (RFC 9112, 9.6).
func lingerClose(c *net.TCPConn) {
	_ = c.CloseWrite()
	buf := make([]byte, 4096)
	for n := 0; n < maxLingerBytes; {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	_ = c.Close()
}

// wake interrupts a pending Read on c by moving its deadline to the past.
func wake(c *net.TCPConn) {
	_ = c.SetReadDeadline(time.Unix(1, 0))
}
