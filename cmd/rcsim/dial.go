package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/rcbridge/rcbridge/rc/rctest"
)

const (
	// dialTimeout bounds one TCP dial plus sending the ReverseHello.
	dialTimeout = 10 * time.Second
	// healthyAfter: a connection that lasted this long was a working
	// session, so the next dial starts again from the minimum backoff. A
	// refused ReverseHello ends the connection at once and doubles it.
	healthyAfter = 5 * time.Second
)

// dialer keeps one reverse connection open from the server to one client
// address, re-dialing with exponential backoff after a refusal or a drop.
// Like a real server (and node-opcua) it holds at most one connection per
// client URL at a time.
type dialer struct {
	srv      *rctest.Server
	addr     string
	min, max time.Duration
	log      *slog.Logger
}

// run dials until ctx is done; it closes the open connection on the way out.
func (d *dialer) run(ctx context.Context) {
	backoff := d.min
	for {
		began := time.Now()
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		conn, err := d.srv.Dial(dctx, d.addr)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("reverse connect failed", "err", err)
		} else {
			d.log.Info("reverse connected")
			if !d.hold(ctx, conn) {
				return
			}
			lasted := time.Since(began)
			d.log.Info("connection ended", "after", lasted.Round(time.Millisecond))
			if lasted >= healthyAfter {
				backoff = d.min
			}
		}
		wait := jitter(backoff)
		d.log.Debug("dialing again", "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = nextBackoff(backoff, d.max)
	}
}

// hold waits for conn to end; it reports false when ctx ended first (conn
// is then closed).
func (d *dialer) hold(ctx context.Context, conn *rctest.Conn) bool {
	ended := make(chan struct{})
	go func() {
		conn.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return true
	case <-ctx.Done():
		conn.Close()
		<-ended
		return false
	}
}

// nextBackoff doubles cur up to max.
func nextBackoff(cur, max time.Duration) time.Duration {
	if cur >= max/2 {
		return max
	}
	return 2 * cur
}

// jitter spreads d by ±20 %, so that many simulators restarted together do
// not dial in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
