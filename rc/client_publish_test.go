package rc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// loadSetup is a client with one subscription of three items, fed by a
// load server, and a consumer that records what it gets.
type loadSetup struct {
	srv *rctest.LoadServer
	ln  *net.TCPListener
	c   *rc.Client
	sub *rc.Subscription

	mu     sync.Mutex
	values []uint32
	seqs   []uint32
	events []rc.ClientEvent
	slow   time.Duration // consumer delay per message
	done   chan struct{}
}

// loadConnect makes srv dial ln and returns the admitted session and the
// function that drops the connection.
func loadConnect(t testing.TB, srv *rctest.LoadServer, ln *net.TCPListener) (*rc.Session, func()) {
	t.Helper()
	ctx := ctxTimeout(t, 10*time.Second)
	type dialed struct {
		closeConn func()
		err       error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := srv.Dial(ctx, ln.Addr().String())
		ch <- dialed{c, err}
	}()
	s, err := acceptSession(ctx, ln)
	d := <-ch
	if err = errors.Join(err, d.err); err != nil {
		t.Fatal(err)
	}
	return s, d.closeConn
}

func newLoadSetup(t *testing.T, opts rctest.LoadOptions, cfg rc.ClientConfig, slow time.Duration) (*loadSetup, func()) {
	t.Helper()
	ls := &loadSetup{srv: rctest.NewLoadServer(opts), ln: listen(t), slow: slow, done: make(chan struct{})}
	t.Cleanup(ls.srv.Close)
	cfg.OnClientEvent = func(ev rc.ClientEvent) {
		ls.mu.Lock()
		ls.events = append(ls.events, ev)
		ls.mu.Unlock()
	}
	s, drop := loadConnect(t, ls.srv, ls.ln)
	c, err := newFactory(t, cfg).Build(ctxTimeout(t, 10*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	ls.c = c
	t.Cleanup(func() {
		_ = c.Close(ctxTimeout(t, 5*time.Second))
		<-ls.done
	})
	go ls.consume()
	ls.sub, err = c.Subscribe(ctxTimeout(t, 5*time.Second), rc.SubscriptionParams{PublishingInterval: 20 * time.Millisecond, KeepAliveCount: 10})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []rc.MonitorRequest
	for i := range 3 {
		reqs = append(reqs, rc.MonitorRequest{NodeID: ua.NewStringNodeID(1, fmt.Sprint("v", i))})
	}
	if _, err := ls.sub.Monitor(ctxTimeout(t, 5*time.Second), reqs...); err != nil {
		t.Fatal(err)
	}
	return ls, drop
}

// reconnect drops the connection, waits until the client noticed, and
// resumes on the server's next one; it returns the new connection's drop
// function and the outcome.
func (ls *loadSetup) reconnect(t *testing.T, drop func()) (func(), rc.ResumeOutcome) {
	t.Helper()
	drop()
	select {
	case <-ls.c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("drop unnoticed")
	}
	s, next := loadConnect(t, ls.srv, ls.ln)
	outcome, err := ls.c.Resume(ctxTimeout(t, 10*time.Second), s)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	return next, outcome
}

func (ls *loadSetup) consume() {
	defer close(ls.done)
	for n := range ls.c.Notifications() {
		ls.mu.Lock()
		ls.seqs = append(ls.seqs, n.SequenceNumber)
		for _, dc := range n.DataChanges {
			ls.values = append(ls.values, dc.Value.Value.Value().(uint32))
		}
		ls.mu.Unlock()
		time.Sleep(ls.slow)
		n.Ack()
	}
}

func (ls *loadSetup) count() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.values)
}

func (ls *loadSetup) waitValues(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for ls.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d values after 20 s, want %d", ls.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkValues checks that the values are 0..n-1 in order, except those in
// lost.
func (ls *loadSetup) checkValues(t *testing.T, n int, lost func(v uint32) bool) {
	t.Helper()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var want uint32
	for i, v := range ls.values {
		for lost != nil && lost(want) {
			want++
		}
		if v != want {
			t.Fatalf("value %d is %d, want %d (sequence numbers %v)", i, v, want, ls.seqs)
		}
		want++
	}
	if len(ls.values) < n {
		t.Fatalf("%d values, want %d", len(ls.values), n)
	}
}

func (ls *loadSetup) eventsOf(kind rc.ClientEventKind) []rc.ClientEvent {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []rc.ClientEvent
	for _, e := range ls.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestPublishInOrderWithLostMessages(t *testing.T) {
	const msgs, per = 300, 10
	ls, _ := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per, Messages: msgs}, rc.ClientConfig{}, 0)
	ls.waitValues(t, 50*per)
	ls.srv.DropNext(3) // three messages vanish: the next ones reveal the gap
	ls.waitValues(t, msgs*per)
	ls.checkValues(t, msgs*per, nil)
	if ev := ls.eventsOf(rc.PublishGap); len(ev) > 0 {
		t.Errorf("gap events: %+v", ev)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ls.srv.Unacknowledged() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // acknowledgements ride on the next Publish
	}
	if n := ls.srv.Unacknowledged(); n > 0 {
		t.Errorf("%d messages never acknowledged", n)
	}
	if got := ls.sub.Acknowledged(); got != msgs {
		t.Errorf("Acknowledged = %d, want %d", got, msgs)
	}
}

func TestPublishGapReported(t *testing.T) {
	const msgs, per = 200, 10
	ls, _ := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per, Messages: msgs}, rc.ClientConfig{}, 0)
	ls.waitValues(t, 20*per)
	ls.srv.ForgetUnacknowledged()
	ls.srv.DropNext(2)
	ls.waitValues(t, (msgs-2)*per)
	deadline := time.Now().Add(5 * time.Second) // the event follows the delivery
	for len(ls.eventsOf(rc.PublishGap)) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	gaps := ls.eventsOf(rc.PublishGap)
	if len(gaps) != 1 || gaps[0].LastLost != gaps[0].FirstLost+1 {
		t.Fatalf("gap events %+v, want one of two messages", gaps)
	}
	first := gaps[0].FirstLost
	ls.checkValues(t, (msgs-2)*per, func(v uint32) bool {
		seq := v/per + 1
		return seq == first || seq == first+1
	})
}

func TestPublishResumeRepublishes(t *testing.T) {
	const per = 5
	ls, drop := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per}, rc.ClientConfig{}, 0)
	for i := range 5 {
		ls.waitValues(t, (i+1)*200*per)
		var outcome rc.ResumeOutcome
		drop, outcome = ls.reconnect(t, drop) // messages in flight are lost with the socket
		if outcome != rc.SessionResumed {
			t.Fatalf("Resume = %v", outcome)
		}
	}
	ls.waitValues(t, 1200*per)
	ls.checkValues(t, 1200*per, nil)
	if ev := ls.eventsOf(rc.PublishGap); len(ev) > 0 {
		t.Errorf("gap events: %+v", ev)
	}
}

func TestPublishRapidResumes(t *testing.T) {
	// Connections that drop again right after Resume, while the sync pass
	// may still run: nothing may be lost or stall.
	const per = 5
	ls, drop := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per}, rc.ClientConfig{}, 0)
	ls.waitValues(t, 50*per)
	for range 20 {
		drop, _ = ls.reconnect(t, drop)
	}
	n := ls.count()
	ls.waitValues(t, n+200*per)
	ls.checkValues(t, n+200*per, nil)
}

func TestPublishStallWatchdog(t *testing.T) {
	const per = 5
	ls, _ := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per}, rc.ClientConfig{}, 0)
	ls.waitValues(t, 50*per)
	ls.srv.Stall(true)
	stalled := time.Now()
	select {
	case <-ls.c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stall not detected")
	}
	// The keep-alive budget is 20 ms × 10; the watchdog allows a second
	// more.
	t.Logf("stall detected after %v", time.Since(stalled))
	if err := ls.c.Err(); !errors.Is(err, rc.ErrStalled) {
		t.Fatalf("Err = %v, want ErrStalled", err)
	}
	ls.srv.Stall(false)
	s, _ := loadConnect(t, ls.srv, ls.ln)
	if outcome, err := ls.c.Resume(ctxTimeout(t, 10*time.Second), s); err != nil || outcome != rc.SessionResumed {
		t.Fatalf("Resume = %v, %v", outcome, err)
	}
	n := ls.count()
	ls.waitValues(t, n+100*per)
	ls.checkValues(t, n+100*per, nil)
	deadline := time.Now().Add(5 * time.Second)
	for len(ls.eventsOf(rc.PublishStalled)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(ls.eventsOf(rc.PublishStalled)) != 1 {
		t.Errorf("stalled events: %+v", ls.eventsOf(rc.PublishStalled))
	}
}

func TestPublishBackpressure(t *testing.T) {
	const per, queue = 5, 4
	cfg := rc.ClientConfig{NotificationQueue: queue, PublishRequests: 2}
	ls, _ := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per}, cfg, 20*time.Millisecond)
	ls.waitValues(t, 10*per)
	time.Sleep(300 * time.Millisecond)
	ls.mu.Lock()
	delivered := len(ls.seqs)
	ls.mu.Unlock()
	// The server produced only what the client asked for: what the
	// consumer has, what waits in the queue, and one answer per
	// outstanding request (plus the message on its way to the consumer).
	if sent := int(ls.srv.Sent()); sent > delivered+queue+2+1 {
		t.Errorf("server sent %d messages, consumer got %d: the queue is not bounded", sent, delivered)
	}
}

func TestPublishDeleteAndClose(t *testing.T) {
	ls, _ := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: 2, Messages: 10}, rc.ClientConfig{}, 0)
	ls.waitValues(t, 20)
	items := ls.sub.Items()
	if len(items) != 3 || !slices.IsSortedFunc(items, func(a, b rc.MonitoredItem) int { return int(a.ClientHandle) - int(b.ClientHandle) }) {
		t.Fatalf("items = %+v", items)
	}
	// The load server does not implement DeleteSubscriptions: the error is
	// a service result and the client stays up.
	err := ls.sub.Delete(ctxTimeout(t, 5*time.Second))
	if !errors.Is(err, ua.StatusBadServiceUnsupported) {
		t.Fatalf("Delete = %v", err)
	}
	if err := ls.c.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ls.c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ls.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Notifications not closed by Close")
	}
}

// TestPublishSmallBuffers runs the engine with the smallest transport
// buffers the spec allows: the Hello announces them, and messages of
// 1,000 changes (about 26 KB) arrive in several chunks, also when
// republished, whole and in order.
func TestPublishSmallBuffers(t *testing.T) {
	const msgs, per = 40, 1000
	ls, _ := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per, Messages: msgs}, rc.ClientConfig{BufferSize: 8192}, 0)
	if recv, send := ls.srv.ClientBuffers(); recv != 8192 || send != 8192 {
		t.Errorf("Hello buffer sizes %d/%d, want 8192/8192", recv, send)
	}
	ls.waitValues(t, 5*per)
	ls.srv.DropNext(2) // republished, in chunks too
	ls.waitValues(t, msgs*per)
	ls.checkValues(t, msgs*per, nil)
}

// TestPublishPausedLoad checks the load server's Pause that the benchmarks
// rely on: while paused only keep-alives come, the session is not declared
// stalled, and the values go on in order after it.
func TestPublishPausedLoad(t *testing.T) {
	const per = 10
	ls, _ := newLoadSetup(t, rctest.LoadOptions{ChangesPerMessage: per}, rc.ClientConfig{}, 0)
	ls.waitValues(t, 20*per)
	ls.srv.Pause(true)
	time.Sleep(100 * time.Millisecond) // what was on its way arrives
	paused := ls.count()
	time.Sleep(1500 * time.Millisecond) // past the stall limit (1.2 s) without keep-alives
	if got := ls.count(); got != paused {
		t.Errorf("%d values while paused", got-paused)
	}
	if err := ls.c.Err(); err != nil {
		t.Fatalf("connection ended while paused: %v", err)
	}
	ls.srv.Pause(false)
	ls.waitValues(t, paused+20*per)
	ls.checkValues(t, paused+20*per, nil)
	if ev := ls.eventsOf(rc.PublishStalled); len(ev) > 0 {
		t.Errorf("stalled while paused: %+v", ev)
	}
}
