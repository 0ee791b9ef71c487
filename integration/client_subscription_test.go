//go:build integration

package integration

// Tests of rc's subscriptions and publish engine against node-opcua: every
// value of a 10 ms counter arrives exactly once and in order across dropped
// connections, stalls and server restarts report themselves.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/rc"
)

// counterConsumer reads notifications, checks that the counter values
// follow each other without gaps or repeats, and acknowledges each message.
type counterConsumer struct {
	mu      sync.Mutex
	values  []uint32
	origin  []string // message of each value, for failure reports
	errs    []string
	events  clientEvents
	handle  uint32
	done    chan struct{}
	lastSeq map[uint32]uint32
}

func newCounterConsumer() *counterConsumer {
	return &counterConsumer{done: make(chan struct{}), lastSeq: make(map[uint32]uint32)}
}

func (cc *counterConsumer) run(c *rc.Client) {
	defer close(cc.done)
	for n := range c.Notifications() {
		cc.mu.Lock()
		if last, ok := cc.lastSeq[n.SubscriptionID]; ok && n.SequenceNumber != last+1 {
			cc.errs = append(cc.errs, fmt.Sprintf("subscription %d: sequence %d followed by %d", n.SubscriptionID, last, n.SequenceNumber))
		}
		cc.lastSeq[n.SubscriptionID] = n.SequenceNumber
		for _, dc := range n.DataChanges {
			if dc.ClientHandle != cc.handle || dc.Value == nil || dc.Value.Value == nil {
				continue
			}
			v, ok := dc.Value.Value.Value().(uint32)
			if !ok {
				cc.errs = append(cc.errs, "counter value of another type")
				continue
			}
			cc.values = append(cc.values, v)
			cc.origin = append(cc.origin, fmt.Sprintf("sub %d seq %d republished %v src %s", n.SubscriptionID, n.SequenceNumber, n.Republished, dc.Value.SourceTimestamp.Format("15:04:05.000")))
		}
		cc.mu.Unlock()
		n.Ack()
	}
}

// count returns how many values arrived.
func (cc *counterConsumer) count() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.values)
}

// check reports repeats and holes in the counter values.
func (cc *counterConsumer) check(t *testing.T) {
	t.Helper()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, e := range cc.errs {
		t.Error(e)
	}
	for i := 1; i < len(cc.values); i++ {
		if cc.values[i] != cc.values[i-1]+1 {
			t.Errorf("value %d (%s) follows %d (%s), index %d of %d", cc.values[i], cc.origin[i], cc.values[i-1], cc.origin[i-1], i, len(cc.values))
		}
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// subscribeCounter subscribes c to the Counter node with every change
// reported.
func subscribeCounter(t *testing.T, srv *rcServer, c *rc.Client, cc *counterConsumer, interval time.Duration) *rc.Subscription {
	t.Helper()
	sub, err := c.Subscribe(ctx10s(t), rc.SubscriptionParams{PublishingInterval: interval, KeepAliveCount: 10})
	if err != nil {
		t.Fatal(err)
	}
	items, err := sub.Monitor(ctx10s(t), rc.MonitorRequest{NodeID: srv.NodeID(nodeua.NodeCounter), QueueSize: 10000, DiscardOldest: true})
	if err != nil || items[0].Status != ua.StatusOK {
		t.Fatalf("Monitor = %+v, %v", items, err)
	}
	cc.mu.Lock()
	cc.handle = items[0].ClientHandle
	cc.mu.Unlock()
	return sub
}

func TestClientNodeUASubscriptionSurvivesDrops(t *testing.T) {
	srv := startReverse(t, nodeua.Config{})
	cc := newCounterConsumer()
	c := srv.build(t, factory(t, rc.ClientConfig{OnClientEvent: cc.events.record}))
	go cc.run(c)
	subscribeCounter(t, srv, c, cc, 50*time.Millisecond)
	waitFor(t, "first values", 10*time.Second, func() bool { return cc.count() > 10 })

	for i := range 10 {
		time.Sleep(time.Duration(50+rand.IntN(300)) * time.Millisecond)
		if _, err := srv.DropConnections(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("drop %d unnoticed", i)
		}
		outcome, err := c.Resume(ctx10s(t), srv.accept(t))
		if err != nil || outcome != rc.SessionResumed {
			t.Fatalf("Resume %d = %v, %v", i, outcome, err)
		}
	}
	before := cc.count()
	waitFor(t, "values after the last resume", 10*time.Second, func() bool { return cc.count() > before+20 })
	if err := c.Close(ctx10s(t)); err != nil {
		t.Fatal(err)
	}
	<-cc.done
	cc.check(t)
	// The client's states: active, ten times disconnected, resuming,
	// resumed (same session), closed; no subscription event.
	want := []rc.ClientEventKind{rc.ClientActive}
	for range 10 {
		want = append(want, rc.ClientDisconnected, rc.ClientResuming, rc.ClientResumed)
	}
	want = append(want, rc.ClientClosed)
	if got := cc.events.kinds(); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	t.Logf("%d counter values (%d..%d), none lost or repeated across 10 drops", len(cc.values), cc.values[0], cc.values[len(cc.values)-1])
}

func TestClientNodeUASubscriptionStallAndRestart(t *testing.T) {
	srv := startReverse(t, nodeua.Config{})
	cc := newCounterConsumer()
	c := srv.build(t, factory(t, rc.ClientConfig{OnClientEvent: cc.events.record}))
	go cc.run(c)
	sub := subscribeCounter(t, srv, c, cc, 100*time.Millisecond) // keep-alive budget 1 s
	waitFor(t, "first values", 10*time.Second, func() bool { return cc.count() > 10 })

	// A hung server: the socket stays open, nothing is answered.
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stall not detected")
	}
	t.Logf("stall detected after %v", time.Since(paused))
	if err := srv.Continue(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled event", 5*time.Second, func() bool {
		return slices.ContainsFunc(cc.events.snapshot(), func(e rc.ClientEvent) bool { return e.Kind == rc.PublishStalled })
	})
	if err := c.Err(); !errors.Is(err, rc.ErrStalled) {
		t.Errorf("Err = %v, want ErrStalled", err)
	}
	outcome, err := c.Resume(ctx10s(t), srv.accept(t))
	if err != nil || outcome != rc.SessionResumed {
		t.Fatalf("Resume after stall = %v, %v", outcome, err)
	}
	before := cc.count()
	waitFor(t, "values after the stall", 10*time.Second, func() bool { return cc.count() > before+20 })
	cc.check(t)

	// A restarted server has lost the session: the subscription is created
	// again and the loss is reported.
	oldID := sub.ID()
	restartAndResume(t, srv, c)
	waitFor(t, "recreated subscription", 10*time.Second, func() bool { return sub.ID() != oldID })
	cc.mu.Lock()
	cc.values, cc.origin = nil, nil // the counter starts over in the new process
	cc.mu.Unlock()
	waitFor(t, "values from the new server", 10*time.Second, func() bool { return cc.count() > 10 })
	var gaps int
	for _, e := range cc.events.snapshot() {
		if e.Kind == rc.PublishGap && e.SubscriptionID == oldID {
			gaps++
		}
	}
	if gaps != 1 {
		t.Errorf("%d gap events for the lost subscription, want 1: %+v", gaps, cc.events.snapshot())
	}
}

func TestClientNodeUAMonitorBatchesAndReportsPerItem(t *testing.T) {
	srv := startReverse(t, nodeua.Config{GeneratedNodes: 8, OperationLimits: nodeua.OperationLimits{MaxMonitoredItemsPerCall: 3}})
	c := srv.build(t, factory(t, rc.ClientConfig{}))
	if got := c.OperationLimits().MaxMonitoredItemsPerCall; got != 3 {
		t.Fatalf("MaxMonitoredItemsPerCall = %d", got)
	}
	sub, err := c.Subscribe(ctx10s(t), rc.SubscriptionParams{PublishingInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []rc.MonitorRequest
	for i := range 8 {
		reqs = append(reqs, rc.MonitorRequest{NodeID: srv.NodeID(nodeua.GenNode(i))})
		if i == 2 || i == 5 {
			reqs = append(reqs, rc.MonitorRequest{NodeID: srv.NodeID("NoSuchNode")})
		}
	}
	items, err := sub.Monitor(ctx10s(t), reqs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		want := ua.StatusOK
		if reqs[i].NodeID.StringID() == "NoSuchNode" {
			want = ua.StatusBadNodeIDUnknown
		}
		if it.Status != want {
			t.Errorf("item %d (%s): %v, want %v", i, reqs[i].NodeID, it.Status, want)
		}
	}
	if n := len(sub.Items()); n != 8 {
		t.Errorf("%d items monitored, want 8", n)
	}
	// Every good item reports its initial value.
	seen := make(map[uint32]bool)
	deadline := time.After(10 * time.Second)
	for len(seen) < 8 {
		select {
		case n := <-c.Notifications():
			for _, dc := range n.DataChanges {
				seen[dc.ClientHandle] = true
			}
			n.Ack()
		case <-deadline:
			t.Fatalf("initial values of %d items only", len(seen))
		}
	}
	if err := sub.Delete(ctx10s(t)); err != nil {
		t.Fatal(err)
	}
}

// TestClientNodeUASubscriptionTransferred lets the session time out while
// the connection is down: the subscription outlives it on the server and is
// transferred to the new session (same user), with nothing lost.
func TestClientNodeUASubscriptionTransferred(t *testing.T) {
	srv := startReverse(t, nodeua.Config{})
	cc := newCounterConsumer()
	c := srv.build(t, factory(t, rc.ClientConfig{
		OnClientEvent:  cc.events.record,
		SessionTimeout: 2 * time.Second,
		Trust:          rc.TrustConfig{Pinned: map[string][]byte{srv.ApplicationURI(): srv.CertificateDER()}},
		Identity:       rc.UserNameIdentity(nodeua.OperatorUser, rc.NewSecret(nodeua.OperatorPassword)),
	}))
	go cc.run(c)
	sub := subscribeCounter(t, srv, c, cc, 100*time.Millisecond)
	waitFor(t, "first values", 10*time.Second, func() bool { return cc.count() > 10 })
	id := sub.ID()

	if _, err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	next := srv.accept(t)
	time.Sleep(4 * time.Second) // the session times out on the server
	outcome, err := c.Resume(ctx10s(t), next)
	if err != nil || outcome != rc.SessionRecreated {
		t.Fatalf("Resume = %v, %v; want a new session", outcome, err)
	}
	waitFor(t, "the transfer or recreation", 10*time.Second, func() bool {
		return slices.ContainsFunc(cc.events.snapshot(), func(e rc.ClientEvent) bool {
			return e.Kind == rc.PublishTransferred || e.Kind == rc.PublishRecreated
		})
	})
	before := cc.count()
	waitFor(t, "values after the transfer", 10*time.Second, func() bool { return cc.count() > before+20 })
	evs := cc.events.snapshot()
	t.Logf("events: %+v", evs)
	if !slices.ContainsFunc(evs, func(e rc.ClientEvent) bool { return e.Kind == rc.PublishTransferred && e.SubscriptionID == id }) {
		t.Fatalf("subscription not transferred: %+v", evs)
	}
	if sub.ID() != id {
		t.Errorf("subscription id changed")
	}
	cc.check(t)
}
