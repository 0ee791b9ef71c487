package rc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gopcua/opcua/ua"
)

// ErrWrongServer means Resume got a reverse connection from another server
// than the client's.
var ErrWrongServer = errors.New("rc: reverse connection from another server")

// ResumeOutcome says what Resume did with the session.
type ResumeOutcome uint8

const (
	// SessionResumed: the session moved to the new connection with its
	// authentication token; everything attached to it (subscriptions,
	// continuation points) is intact.
	SessionResumed ResumeOutcome = iota + 1
	// SessionRecreated: the server no longer knew the session (it timed
	// out or the server restarted), so a new session was created on the new
	// connection. Whatever lived in the old session is gone.
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

// sessionGone lists the ActivateSession results that mean the server no
// longer has the session. Specification: Part 4, 5.6.3.
func sessionGone(err error) bool {
	for _, st := range []ua.StatusCode{ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSessionNotActivated} {
		if errors.Is(err, st) {
			return true
		}
	}
	return false
}

// Resume moves the client onto s, a new reverse connection from the same
// server, typically after Done reported the old one lost. It opens a new
// secure channel on s and activates the session on it with the same
// authentication token (Part 4, 5.6.3), so the session and its
// subscriptions carry on. If the server no longer knows the session, Resume
// creates a new one on s and reports SessionRecreated.
//
// Resume takes ownership of s.Conn (closed on error). It never dials: the
// caller hands it the server's next connection. On success the previous
// channel is closed and Done returns the new channel's done channel. With
// security on, the server must still present the certificate the session
// was created with, and that certificate must still pass the trust rules.
//
// Resume and Close are serialized; service calls may run concurrently and
// use the new channel once Resume returns.
func (c *Client) Resume(ctx context.Context, s *Session) (ResumeOutcome, error) {
	if s == nil || s.Conn == nil {
		return 0, fmt.Errorf("rc: Resume: nil session or connection")
	}
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	fail := func(err error) (ResumeOutcome, error) {
		_ = s.Conn.Close()
		return 0, fmt.Errorf("rc: server %q: resume: %w", c.serverURI, err)
	}
	if c.closed.Load() {
		return fail(ErrClosed)
	}
	if s.ServerURI != c.serverURI {
		return fail(fmt.Errorf("%w: %q", ErrWrongServer, s.ServerURI))
	}
	tcp, ok := s.Conn.(*net.TCPConn)
	if !ok {
		return fail(fmt.Errorf("%w: %T", ErrNotTCP, s.Conn))
	}
	c.emit(ClientEvent{Kind: ClientResuming})
	outcome, err := c.resume(ctx, s, tcp)
	if err != nil {
		err = fmt.Errorf("rc: server %q: resume: %w", c.serverURI, err)
		c.emit(ClientEvent{Kind: ClientResumeFailed, Err: err})
		return 0, err
	}
	return outcome, nil
}

// resume is Resume after the checks: it owns tcp.
func (c *Client) resume(ctx context.Context, s *Session, tcp *net.TCPConn) (ResumeOutcome, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SetupTimeout)
	defer cancel()

	c.sess.mu.Lock()
	serverCert := c.sess.serverCert
	c.sess.mu.Unlock()
	if c.cfg.secure() {
		if _, err := c.cfg.Trust.check(c.serverURI, serverCert, time.Now()); err != nil {
			_ = tcp.Close()
			return 0, err
		}
	}
	begin := time.Now()
	ch, err := openChannel(ctx, tcp, c.channelParams(s.EndpointURL, serverCert), c.log)
	if err != nil {
		return 0, err
	}
	outcome := SessionResumed
	err = c.activateSession(ctx, ch)
	if sessionGone(err) {
		c.log.Info("session gone on the server, creating a new one", "err", err)
		outcome = SessionRecreated
		err = c.newSession(ctx, ch, s.EndpointURL)
	}
	if err != nil {
		ch.close(ctx)
		return 0, err
	}
	old := c.swapChannel(ch, outcome)
	old.close(ctx)
	if outcome == SessionRecreated {
		if err := c.loadServerInfo(ctx); err != nil {
			c.log.Warn("reading server info after a new session", "err", err)
		}
	}
	if p := c.pub.Load(); p != nil {
		p.channelChanged(outcome) // republish, transfer or recreate, then publish on
	}
	c.log.Info("session moved to a new connection", "outcome", outcome.String(), "took", time.Since(begin),
		"remote", tcp.RemoteAddr().String())
	return outcome, nil
}

// newSession replaces the session state with a new session created and
// activated on ch.
func (c *Client) newSession(ctx context.Context, ch *channel, endpointURL string) error {
	c.sess.mu.Lock()
	eps := c.sess.endpoints
	c.sess.authToken = nil // CreateSession goes without one
	c.sess.mu.Unlock()
	if err := c.createSession(ctx, ch, endpointURL, eps); err != nil {
		return err
	}
	c.typesMu.Lock()
	c.types = nil // type hierarchy may differ after a server restart
	c.typesMu.Unlock()
	return c.activateSession(ctx, ch)
}
