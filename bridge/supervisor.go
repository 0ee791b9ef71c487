package bridge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rcbridge/rcbridge/mapping"
)

// supervisor owns one server: it takes the server's sessions from the
// Source one at a time (so there are never two sessions for one server),
// sets each up, keeps it across dropped connections with Resume, and
// publishes the server's presence. Its command worker carries out the
// server's commands one at a time.
type supervisor struct {
	b     *Bridge
	uri   string
	key   string
	cfg   ServerConfig
	items []*mapping.Item
	log   *slog.Logger
	m     ServerMetrics

	statusRoute, eventsRoute, presenceKey string

	limiter *tokenBucket
	cmds    chan command

	mu      sync.Mutex
	state   PresenceState
	since   time.Time
	changed chan struct{} // closed and replaced at every state change
	sess    *session      // the current session; nil when offline
	// pending are the presence changes not yet handed to the
	// PresencePublisher, oldest first, at most maxPendingPresence; wake
	// tells the presence goroutine about them.
	pending []Presence
	wake    chan struct{}
}

func newSupervisor(b *Bridge, srv mapping.Server, cfg ServerConfig) *supervisor {
	s := &supervisor{
		b:       b,
		uri:     srv.URI,
		key:     srv.Key,
		cfg:     cfg,
		items:   b.cfg.Table.For(srv.URI),
		log:     b.log.With("server_uri", srv.URI),
		limiter: newTokenBucket(cfg.CommandRate, cfg.CommandBurst),
		cmds:    make(chan command, b.cfg.CommandQueue),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	if b.cfg.Metrics.Server != nil {
		s.m = b.cfg.Metrics.Server(srv.Key)
	}
	s.statusRoute, _ = b.cfg.Table.StatusRoute(srv.URI)
	s.eventsRoute, _ = b.cfg.Table.EventsRoute(srv.URI)
	s.presenceKey = kvKey(srv.Key)
	return s
}

// run supervises the server until ctx ends: it takes a session, serves it
// until it is lost for good, and takes the next. Presence starts offline
// and ends offline.
func (s *supervisor) run(ctx context.Context) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.presenceLoop(ctx, stop) })
	defer func() {
		close(stop)
		wg.Wait()
	}()
	s.setState(Offline)
	delay := s.b.cfg.MinRetryDelay
	for ctx.Err() == nil {
		c, err := s.b.cfg.Source.Connect(ctx, s.uri)
		if err == nil && s.serve(ctx, c) {
			delay = s.b.cfg.MinRetryDelay
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.m.SetupFailures.Add(1)
			s.problem(err)
			s.log.Warn("no session", "err", err, "retry_in", delay)
		}
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, s.b.cfg.MaxRetryDelay)
	}
}

// serve sets up the session of c and keeps it, resuming it after dropped
// connections, until it is lost for good or ctx ends; then it closes it.
// It reports whether the session was set up.
func (s *supervisor) serve(ctx context.Context, c Client) bool {
	sess, err := s.setup(ctx, c)
	if err != nil {
		s.m.SetupFailures.Add(1)
		if ctx.Err() == nil {
			s.problem(err)
			s.log.Warn("session setup failed; closing the session", "err", err)
		}
		s.closeClient(ctx, c)
		return false
	}
	s.m.Sessions.Add(1)
	pctx, stopPipe := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sess.pipe.run(pctx) })
	defer func() {
		s.setSession(nil)
		s.setState(Offline)
		stopPipe()
		wg.Wait()
		s.closeClient(ctx, c)
	}()
	s.setSession(sess)
	s.setState(Online)
	s.log.Info("server online", "items", len(s.items), "monitored", len(sess.pipe.handles))
	for {
		select {
		case <-ctx.Done():
			return true
		case <-c.Done():
		}
		if ctx.Err() != nil {
			return true
		}
		s.log.Info("connection lost; keeping the session for the server's next connection", "err", c.Err(), "resume_timeout", s.b.cfg.ResumeTimeout)
		s.setState(Resuming)
		outcome, err := s.resume(ctx, c)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("session not resumed; closing it", "err", err)
			}
			return true
		}
		if outcome == SessionRecreated {
			s.m.Recreated.Add(1)
			s.refreshTargets(ctx, sess)
		}
		s.m.Resumes.Add(1)
		s.setState(Online)
		s.log.Info("session resumed", "outcome", outcome)
	}
}

// setup resolves the server's items in the session of c, works out the
// command targets and creates the subscriptions.
func (s *supervisor) setup(ctx context.Context, c Client) (*session, error) {
	r, err := resolve(ctx, c, s.items)
	if err != nil {
		return nil, err
	}
	s.logUnresolved(r)
	targets, err := commandTargets(ctx, c, s.items, r)
	if err != nil {
		return nil, err
	}
	for it, t := range targets {
		if t.err != nil {
			s.log.Warn("commands to this row will be refused", "name", it.Name, "route", it.CommandRoute, "err", t.err)
		}
	}
	specs, handles := plan(s.items, r, s.cfg)
	for _, spec := range specs {
		id, statuses, err := c.Subscribe(ctx, spec)
		if err != nil {
			if errConnection(c, err) {
				return nil, err
			}
			s.log.Error("subscription refused by the server", "items", len(spec.Items), "err", err)
			for _, mi := range spec.Items {
				handles[mi.Handle] = nil
			}
			continue
		}
		for i, st := range statuses {
			if i < len(spec.Items) && isBad(st) {
				h := spec.Items[i].Handle
				s.log.Warn("monitored item refused by the server", "name", handles[h].Name, "node", handles[h].Node, "status", st)
				handles[h] = nil
			}
		}
		s.log.Debug("subscription created", "subscription", id, "items", len(spec.Items))
	}
	return &session{client: c, pipe: newPipeline(s, c, handles), targets: targets}, nil
}

// logUnresolved logs every reference that did not resolve.
func (s *supervisor) logUnresolved(r resolved) {
	for k, it := range s.items {
		for _, x := range []struct {
			ref mapping.NodeRef
			res mapping.Resolution
		}{{it.Node, r.node[k]}, {it.Object, r.object[k]}, {it.Method, r.method[k]}} {
			if !x.ref.IsZero() && x.res.Err != nil {
				s.log.Warn("node not resolved; the row is inactive in this session", "name", it.Name, "node", x.ref.String(), "err", x.res.Err)
			}
		}
	}
}

// refreshTargets works the command targets out again after the server
// recreated the session: the namespace indexes may have changed.
func (s *supervisor) refreshTargets(ctx context.Context, sess *session) {
	r, err := resolve(ctx, sess.client, s.items)
	if err == nil {
		var targets map[*mapping.Item]*target
		if targets, err = commandTargets(ctx, sess.client, s.items, r); err == nil {
			s.mu.Lock()
			sess.targets = targets
			s.mu.Unlock()
			return
		}
	}
	s.log.Warn("command targets not refreshed after the session was recreated", "err", err)
}

// resume waits for the server's next connection and moves the session
// onto it, trying again after failures until ResumeTimeout.
func (s *supervisor) resume(ctx context.Context, c Client) (ResumeOutcome, error) {
	rctx, cancel := context.WithTimeout(ctx, s.b.cfg.ResumeTimeout)
	defer cancel()
	for {
		outcome, err := c.Resume(rctx)
		if err == nil {
			return outcome, nil
		}
		s.m.ResumeFailures.Add(1)
		s.problem(err)
		if rctx.Err() != nil {
			return 0, err
		}
		s.log.Warn("resume failed; waiting for the next connection", "err", err)
		if !sleep(rctx, s.b.cfg.MinRetryDelay) {
			return 0, err
		}
	}
}

// closeClient closes c within ShutdownTimeout, also after ctx ended.
func (s *supervisor) closeClient(ctx context.Context, c Client) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.b.cfg.ShutdownTimeout)
	defer cancel()
	if err := c.Close(cctx); err != nil {
		s.log.Debug("closing the session", "err", err)
	}
}

// setSession sets the current session.
func (s *supervisor) setSession(sess *session) {
	s.mu.Lock()
	s.sess = sess
	s.mu.Unlock()
}

// current returns the current session and state.
func (s *supervisor) current() (*session, PresenceState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sess, s.state
}

// problem reports err to Metrics.Problem.
func (s *supervisor) problem(err error) {
	if f := s.b.cfg.Metrics.Problem; f != nil {
		f(s.key, err)
	}
}

// setState records a presence change and hands it to the presence
// goroutine.
func (s *supervisor) setState(st PresenceState) {
	now := time.Now()
	s.mu.Lock()
	if st == s.state && !s.since.IsZero() {
		s.mu.Unlock()
		return
	}
	s.state, s.since = st, now
	close(s.changed)
	s.changed = make(chan struct{})
	if len(s.pending) == maxPendingPresence {
		// A bus this slow gets the latest states only.
		s.pending = s.pending[1:]
	}
	s.pending = append(s.pending, Presence{Route: s.statusRoute, Key: s.presenceKey, Server: s.uri, State: st, Since: now})
	s.mu.Unlock()
	if f := s.b.cfg.Metrics.State; f != nil {
		f(s.key, st)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// status returns the state, since when, and a channel closed at the next
// change.
func (s *supervisor) status() (PresenceState, time.Time, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.since, s.changed
}

// maxPendingPresence bounds the presence changes waiting for the bus.
const maxPendingPresence = 8

// presenceLoop publishes the presence changes in order. When more than
// maxPendingPresence wait (a slow bus), the oldest are skipped: the newest
// state is the one that matters. When stop is closed it publishes what is
// pending (ending with the final offline) and returns.
func (s *supervisor) presenceLoop(ctx context.Context, stop <-chan struct{}) {
	base := context.WithoutCancel(ctx)
	for {
		select {
		case <-s.wake:
			s.publishPresence(base, s.b.cfg.CommandTimeout)
		case <-stop:
			// Shutting down: only the final state is worth the wait.
			s.mu.Lock()
			if n := len(s.pending); n > 1 {
				s.pending = s.pending[n-1:]
			}
			s.mu.Unlock()
			s.publishPresence(base, s.b.cfg.ShutdownTimeout)
			return
		}
	}
}

func (s *supervisor) publishPresence(base context.Context, timeout time.Duration) {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.mu.Unlock()
			return
		}
		p := s.pending[0]
		s.pending = s.pending[1:]
		s.mu.Unlock()
		if s.b.cfg.Presence == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(base, timeout)
		err := s.b.cfg.Presence.PublishPresence(ctx, p)
		cancel()
		if err != nil {
			// The adapter keeps the latest and publishes it again after
			// reconnecting.
			s.log.Warn("presence not published", "state", p.State, "err", err)
		}
	}
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
