package rc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Broker defaults, used for zero fields of BrokerConfig.
const (
	// DefaultHoldTime is how long an unclaimed session is held.
	DefaultHoldTime = 30 * time.Second
	// DefaultMaxHeldPerServer is how many unclaimed sessions are held per
	// ServerUri.
	DefaultMaxHeldPerServer = 2
)

// Broker errors.
var (
	// ErrBrokerClosed is returned by Next once Run has returned, and
	// reported for the sessions the Broker closed when it stopped.
	ErrBrokerClosed = errors.New("rc: broker closed")
	// ErrBrokerRunning is returned by a second concurrent call of Run.
	ErrBrokerRunning = errors.New("rc: broker already running")
	// ErrHoldExpired is reported for a session nobody claimed within the
	// hold time.
	ErrHoldExpired = errors.New("rc: session not claimed within the hold time")
	// ErrHoldFull is reported for a session pushed out by newer sessions of
	// the same server.
	ErrHoldFull = errors.New("rc: too many unclaimed sessions for the server")
)

// BrokerConfig configures a Broker. Zero fields take the defaults.
type BrokerConfig struct {
	// HoldTime is how long an admitted session waits for Next before it is
	// closed with Bad_TcpServerTooBusy. Default DefaultHoldTime. Keep it
	// below the time servers wait for the client's Hello (node-opcua: 120 s).
	HoldTime time.Duration
	// MaxHeldPerServer is how many unclaimed sessions are held per
	// ServerUri; when a newer one arrives the oldest is closed with
	// Bad_TcpServerTooBusy. Default DefaultMaxHeldPerServer.
	MaxHeldPerServer int
	// Observer receives EventDropped for sessions the Broker closes. Nil
	// means none. It must not block.
	Observer Observer
	// Logger receives the Broker's logs. Nil discards them.
	Logger *slog.Logger
}

// Validate reports every field out of range, each wrapping ErrInvalidConfig.
func (c BrokerConfig) Validate() error {
	var errs []error
	if c.HoldTime < 0 {
		errs = append(errs, fmt.Errorf("%w: BrokerConfig.HoldTime = %v: must not be negative", ErrInvalidConfig, c.HoldTime))
	}
	if c.MaxHeldPerServer < 0 {
		errs = append(errs, fmt.Errorf("%w: BrokerConfig.MaxHeldPerServer = %d: must not be negative", ErrInvalidConfig, c.MaxHeldPerServer))
	}
	return errors.Join(errs...)
}

// Broker sorts admitted sessions by ServerUri: Next waits for the next
// session of one server. Sessions that arrive while nobody waits for their
// server are held, at most MaxHeldPerServer per server for at most HoldTime;
// the rest are closed with Bad_TcpServerTooBusy, which tells the server to
// dial again later.
//
// The intended user keeps one supervisor goroutine per server calling Next
// in a loop, so that a server's later reverse connections reach the code
// that owns its OPC UA session (for resume).
//
// Lifetime: NewBroker, then Run(ctx) in a goroutine. Run consumes the
// Listener's Accept queue until ctx is done or the Listener closes; when it
// returns, held sessions are closed and Next returns ErrBrokerClosed. The
// Broker never closes the Listener. Next is safe for concurrent use.
type Broker struct {
	l    *Listener
	cfg  BrokerConfig
	rep  reporter
	wake chan struct{} // nudges Run to re-arm its expiry timer
	done chan struct{} // closed when Run has stopped

	mu      sync.Mutex
	state   brokerState                // guarded by mu
	held    map[string][]heldSession   // per ServerUri, oldest first; guarded by mu
	waiters map[string][]chan *Session // per ServerUri, first come first served; guarded by mu
}

type brokerState uint8

const (
	brokerNew brokerState = iota
	brokerRunning
	brokerStopped
)

type heldSession struct {
	s       *Session
	expires time.Time
}

// NewBroker returns a Broker taking sessions from l.
func NewBroker(l *Listener, cfg BrokerConfig) (*Broker, error) {
	if l == nil {
		return nil, fmt.Errorf("%w: NewBroker: nil Listener", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HoldTime == 0 {
		cfg.HoldTime = DefaultHoldTime
	}
	if cfg.MaxHeldPerServer == 0 {
		cfg.MaxHeldPerServer = DefaultMaxHeldPerServer
	}
	return &Broker{
		l:       l,
		cfg:     cfg,
		rep:     newReporter(cfg.Logger, cfg.Observer),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		held:    make(map[string][]heldSession),
		waiters: make(map[string][]chan *Session),
	}, nil
}

// Run hands the Listener's sessions to Next callers until ctx is done (it
// then returns nil) or the Listener is closed (it returns
// ErrListenerClosed). Before returning it closes every held session with
// Bad_TcpServerTooBusy and makes Next return ErrBrokerClosed. Run may be
// called once.
func (b *Broker) Run(ctx context.Context) error {
	b.mu.Lock()
	switch b.state {
	case brokerRunning:
		b.mu.Unlock()
		return ErrBrokerRunning
	case brokerStopped:
		b.mu.Unlock()
		return ErrBrokerClosed
	}
	b.state = brokerRunning
	b.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	acceptErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			s, err := b.l.Accept(ctx)
			if err != nil {
				acceptErr <- err
				return
			}
			b.deliver(s)
		}
	}()

	var result error
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-acceptErr:
			if errors.Is(err, ErrListenerClosed) {
				result = err
			}
			break loop
		case <-b.wake:
		case <-timer.C:
		}
		if next := b.expire(time.Now()); !next.IsZero() {
			timer.Reset(time.Until(next))
		}
	}
	cancel()
	wg.Wait()
	b.stop()
	return result
}

// Next returns the next session of serverURI: the most recently admitted
// one held for it, or else the first that arrives. It returns ctx.Err() when
// ctx is done first and ErrBrokerClosed once Run has returned. The caller
// owns the returned Session and must close its Conn.
//
// Held sessions are handed out newest first: a server that dialed again has
// likely given up on its older socket.
func (b *Broker) Next(ctx context.Context, serverURI string) (*Session, error) {
	b.mu.Lock()
	if b.state == brokerStopped {
		b.mu.Unlock()
		return nil, ErrBrokerClosed
	}
	if list := b.held[serverURI]; len(list) > 0 {
		s := list[len(list)-1].s
		list[len(list)-1] = heldSession{}
		b.setHeld(serverURI, list[:len(list)-1])
		b.mu.Unlock()
		return s, nil
	}
	ch := make(chan *Session, 1)
	b.waiters[serverURI] = append(b.waiters[serverURI], ch)
	b.mu.Unlock()

	var err error
	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-b.done:
		err = ErrBrokerClosed
	}
	b.mu.Lock()
	removed := b.removeWaiter(serverURI, ch)
	b.mu.Unlock()
	if !removed {
		// deliver handed a session over in the meantime: it is ours.
		return <-ch, nil
	}
	return nil, err
}

// deliver hands s to the first waiter for its server or holds it.
func (b *Broker) deliver(s *Session) {
	// uri is read before the hand-off: once a waiter has s, it owns it and
	// may change it.
	uri := s.ServerURI
	b.mu.Lock()
	if ws := b.waiters[uri]; len(ws) > 0 {
		b.setWaiters(uri, ws[1:])
		w := ws[0]
		ws[0] = nil
		w <- s // buffered, never blocks
		b.mu.Unlock()
		return
	}
	list := append(b.held[uri], heldSession{s: s, expires: time.Now().Add(b.cfg.HoldTime)})
	var over []*Session
	for len(list) > b.cfg.MaxHeldPerServer {
		over = append(over, list[0].s)
		list[0] = heldSession{}
		list = list[1:]
	}
	b.setHeld(uri, list)
	b.mu.Unlock()

	for _, o := range over {
		dropSession(b.rep, o, fmt.Errorf("%w: more than %d held", ErrHoldFull, b.cfg.MaxHeldPerServer))
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// expire closes the held sessions whose time is up and returns the earliest
// expiry still pending (zero if none).
func (b *Broker) expire(now time.Time) time.Time {
	var expired []*Session
	var next time.Time
	b.mu.Lock()
	for uri, list := range b.held {
		keep := list[:0]
		for _, h := range list {
			switch {
			case !now.Before(h.expires):
				expired = append(expired, h.s)
			default:
				keep = append(keep, h)
				if next.IsZero() || h.expires.Before(next) {
					next = h.expires
				}
			}
		}
		clear(list[len(keep):])
		b.setHeld(uri, keep)
	}
	b.mu.Unlock()
	for _, s := range expired {
		dropSession(b.rep, s, fmt.Errorf("%w (%v)", ErrHoldExpired, b.cfg.HoldTime))
	}
	return next
}

// stop marks the Broker stopped, closes the held sessions and releases the
// waiters.
func (b *Broker) stop() {
	b.mu.Lock()
	b.state = brokerStopped
	held := b.held
	b.held = make(map[string][]heldSession)
	b.mu.Unlock()
	close(b.done)
	for _, list := range held {
		for _, h := range list {
			dropSession(b.rep, h.s, ErrBrokerClosed)
		}
	}
}

// setHeld stores list for uri, deleting empty entries. Caller holds mu.
func (b *Broker) setHeld(uri string, list []heldSession) {
	if len(list) == 0 {
		delete(b.held, uri)
		return
	}
	b.held[uri] = list
}

// setWaiters stores ws for uri, deleting empty entries. Caller holds mu.
func (b *Broker) setWaiters(uri string, ws []chan *Session) {
	if len(ws) == 0 {
		delete(b.waiters, uri)
		return
	}
	b.waiters[uri] = ws
}

// removeWaiter removes ch from the waiters of uri and reports whether it was
// still there. Caller holds mu.
func (b *Broker) removeWaiter(uri string, ch chan *Session) bool {
	ws := b.waiters[uri]
	for i, w := range ws {
		if w == ch {
			b.setWaiters(uri, append(ws[:i:i], ws[i+1:]...))
			return true
		}
	}
	return false
}
