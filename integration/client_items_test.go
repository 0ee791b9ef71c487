//go:build integration

package integration

// ModifyItems, SetMonitoringMode and the client's state events against
// node-opcua: the server revises and applies the new parameters, reports
// per item, honours the monitoring modes, and a restart brings the items
// back with their current parameters and modes.

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/rc"
)

// clientEvents records a client's events (an rc.ClientConfig.OnClientEvent).
type clientEvents struct {
	mu  sync.Mutex
	evs []rc.ClientEvent
}

func (ce *clientEvents) record(ev rc.ClientEvent) {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	ce.evs = append(ce.evs, ev)
}

func (ce *clientEvents) snapshot() []rc.ClientEvent {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	return slices.Clone(ce.evs)
}

func (ce *clientEvents) kinds() []rc.ClientEventKind {
	evs := ce.snapshot()
	out := make([]rc.ClientEventKind, len(evs))
	for i, ev := range evs {
		out[i] = ev.Kind
	}
	return out
}

// itemValues records the values delivered per client handle, and the
// client's events.
type itemValues struct {
	clientEvents
	mu   sync.Mutex
	vals map[uint32][]any
	done chan struct{}
}

func (iv *itemValues) run(c *rc.Client) {
	defer close(iv.done)
	for n := range c.Notifications() {
		iv.mu.Lock()
		for _, dc := range n.DataChanges {
			if dc.Value != nil && dc.Value.Value != nil {
				iv.vals[dc.ClientHandle] = append(iv.vals[dc.ClientHandle], dc.Value.Value.Value())
			}
		}
		iv.mu.Unlock()
		n.Ack()
	}
}

func (iv *itemValues) of(h uint32) []any {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	return slices.Clone(iv.vals[h])
}

func TestClientNodeUAModifyItemsAndMonitoringMode(t *testing.T) {
	const gens = 4
	srv := startReverse(t, nodeua.Config{GeneratedNodes: gens, OperationLimits: nodeua.OperationLimits{MaxMonitoredItemsPerCall: 2}})
	iv := &itemValues{vals: make(map[uint32][]any), done: make(chan struct{})}
	c := srv.build(t, factory(t, rc.ClientConfig{OnClientEvent: iv.record}))
	go iv.run(c)
	t.Cleanup(func() {
		_ = c.Close(ctx10s(t))
		<-iv.done
	})
	if st := c.State(); st != rc.StateActive {
		t.Fatalf("State after Build = %s", st)
	}
	sub, err := c.Subscribe(ctx10s(t), rc.SubscriptionParams{PublishingInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []rc.MonitorRequest{{NodeID: srv.NodeID(nodeua.NodeCounter), QueueSize: 1000}}
	for i := range gens {
		reqs = append(reqs, rc.MonitorRequest{NodeID: srv.NodeID(nodeua.GenNode(i))})
	}
	items, err := sub.Monitor(ctx10s(t), reqs...)
	if err != nil {
		t.Fatal(err)
	}
	h := make([]uint32, len(items)) // h[0] the counter, h[1+i] Gen.i
	for i, it := range items {
		if it.Status != ua.StatusOK {
			t.Fatalf("item %d: %v", i, it.Status)
		}
		h[i] = it.ClientHandle
	}
	waitFor(t, "the counter's values", 10*time.Second, func() bool { return len(iv.of(h[0])) > 20 })

	// Modify: the counter sampled every 500 ms; Gen.0 with an absolute
	// deadband; Gen.1 with a percent deadband, which needs an EURange the
	// node lacks: refused for that item alone.
	abs := &rc.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue, DeadbandType: ua.DeadbandTypeAbsolute, DeadbandValue: 5}
	pct := &rc.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue, DeadbandType: ua.DeadbandTypePercent, DeadbandValue: 10}
	mods := []rc.ModifyRequest{
		{ClientHandle: h[0], SamplingInterval: 500 * time.Millisecond, QueueSize: 1, DiscardOldest: true},
		{ClientHandle: h[1], SamplingInterval: 20 * time.Millisecond, QueueSize: 2, DiscardOldest: true, Filter: abs},
		{ClientHandle: h[2], SamplingInterval: 20 * time.Millisecond, QueueSize: 2, DiscardOldest: true, Filter: pct},
	}
	res, err := sub.ModifyItems(ctx10s(t), mods...)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != ua.StatusOK || res[0].RevisedSamplingInterval != 500*time.Millisecond || res[0].RevisedQueueSize != 1 {
		t.Errorf("counter: %+v", res[0])
	}
	if res[1].Status != ua.StatusOK || res[1].RevisedQueueSize != 2 {
		t.Errorf("Gen.0: %+v", res[1])
	}
	if !isBadStatus(res[2].Status) {
		t.Errorf("Gen.1 with a percent deadband and no EURange: %v, want a Bad status", res[2].Status)
	}
	kept := sub.Items()
	if kept[2].Request.Filter != nil || kept[1].Request.Filter != abs {
		t.Errorf("items kept: Gen.0 filter %+v, Gen.1 filter %+v", kept[1].Request.Filter, kept[2].Request.Filter)
	}
	// The counter now reports at most every 500 ms.
	before := len(iv.of(h[0]))
	time.Sleep(1500 * time.Millisecond)
	if n := len(iv.of(h[0])) - before; n > 6 {
		t.Errorf("%d counter values in 1.5 s at a 500 ms sampling interval", n)
	}
	// The absolute deadband of 5 holds back a change of 3.
	if err := srv.Set(nodeua.GenNode(0), int32(3)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Set(nodeua.GenNode(0), int32(20)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Gen.0 = 20", 10*time.Second, func() bool { return slices.Contains(iv.of(h[1]), any(int32(20))) })
	if slices.Contains(iv.of(h[1]), any(int32(3))) {
		t.Errorf("Gen.0 reported a change within its deadband: %v", iv.of(h[1]))
	}

	// SetMonitoringMode, batched over the limit of 2: Gen.1..3 disabled.
	st, err := sub.SetMonitoringMode(ctx10s(t), ua.MonitoringModeDisabled, h[2], h[3], h[4])
	if err != nil || !slices.Equal(st, []ua.StatusCode{ua.StatusOK, ua.StatusOK, ua.StatusOK}) {
		t.Fatalf("SetMonitoringMode = %v, %v", st, err)
	}
	for _, i := range []int{1, 2, 3} {
		if err := srv.Set(nodeua.GenNode(i), int32(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Set(nodeua.GenNode(0), int32(100)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Gen.0 = 100", 10*time.Second, func() bool { return slices.Contains(iv.of(h[1]), any(int32(100))) })
	time.Sleep(200 * time.Millisecond)
	for _, i := range []int{1, 2, 3} {
		if slices.Contains(iv.of(h[1+i]), any(int32(100+i))) {
			t.Errorf("disabled Gen.%d reported: %v", i, iv.of(h[1+i]))
		}
	}
	// Gen.1 reports again (node-opcua sends its current value).
	if _, err := sub.SetMonitoringMode(ctx10s(t), ua.MonitoringModeReporting, h[2]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Gen.1 reporting again", 10*time.Second, func() bool { return slices.Contains(iv.of(h[2]), any(int32(101))) })

	// A restart: the session is gone; the items come back with their
	// parameters and modes (Gen.2 and Gen.3 still disabled).
	n := len(iv.kinds())
	restartAndResume(t, srv, c)
	waitFor(t, "the recreated subscription", 10*time.Second, func() bool { return slices.Contains(iv.kinds(), rc.PublishRecreated) })
	want := []rc.ClientEventKind{rc.ClientDisconnected, rc.ClientResuming, rc.ClientResumed, rc.PublishGap, rc.PublishRecreated}
	if got := iv.kinds()[n:]; !slices.Equal(got, want) {
		t.Errorf("events around the restart %v, want %v", got, want)
	}
	recreated := sub.Items()
	if len(recreated) != len(items) {
		t.Fatalf("%d items after the restart, want %d", len(recreated), len(items))
	}
	if it := recreated[0]; it.RevisedSamplingInterval != 500*time.Millisecond || it.Request.QueueSize != 1 {
		t.Errorf("recreated counter: %+v, want the 500 ms sampling interval", it)
	}
	for i, it := range recreated {
		want := ua.MonitoringModeReporting
		if i == 3 || i == 4 {
			want = ua.MonitoringModeDisabled
		}
		if it.Mode != want {
			t.Errorf("recreated item %d: mode %v, want %v", i, it.Mode, want)
		}
	}
	for _, i := range []int{1, 2, 3} {
		if err := srv.Set(nodeua.GenNode(i), int32(200+i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "Gen.1 = 201 from the new server", 10*time.Second, func() bool { return slices.Contains(iv.of(h[2]), any(int32(201))) })
	time.Sleep(200 * time.Millisecond)
	for _, i := range []int{2, 3} {
		if slices.Contains(iv.of(h[1+i]), any(int32(200+i))) {
			t.Errorf("recreated disabled Gen.%d reported: %v", i, iv.of(h[1+i]))
		}
	}
}

// restartAndResume restarts srv, which loses c's session, and resumes c on
// the server's next connection: a new session.
func restartAndResume(t *testing.T, srv *rcServer, c *rc.Client) {
	t.Helper()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("restart unnoticed")
	}
	if outcome, err := c.Resume(ctx10s(t), srv.accept(t)); err != nil || outcome != rc.SessionRecreated {
		t.Fatalf("Resume after restart = %v, %v", outcome, err)
	}
}

func isBadStatus(s ua.StatusCode) bool { return s&0x80000000 != 0 }

// TestClientNodeUAEvents: an event monitored item on the Server object
// delivers node-opcua's events with the selected fields, in order, and
// comes back after a restart with its filter.
func TestClientNodeUAEvents(t *testing.T) {
	srv := startReverse(t, nodeua.Config{})
	var ce clientEvents
	c := srv.build(t, factory(t, rc.ClientConfig{OnClientEvent: ce.record}))
	type event struct {
		text     string
		severity uint16
	}
	var (
		mu  sync.Mutex
		got []event
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range c.Notifications() {
			mu.Lock()
			for _, ev := range n.Events {
				var e event
				if lt, ok := ev.Fields[0].Value().(*ua.LocalizedText); ok {
					e.text = lt.Text
				}
				e.severity, _ = ev.Fields[1].Value().(uint16)
				got = append(got, e)
			}
			mu.Unlock()
			n.Ack()
		}
	}()
	t.Cleanup(func() {
		_ = c.Close(ctx10s(t))
		<-done
	})
	events := func() []event {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	sub, err := c.Subscribe(ctx10s(t), rc.SubscriptionParams{PublishingInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	items, err := sub.Monitor(ctx10s(t), rc.MonitorRequest{NodeID: ua.NewNumericNodeID(0, id.Server), QueueSize: 100,
		EventFilter: rc.SelectEventFields("Message", "Severity")})
	if err != nil || items[0].Status != ua.StatusOK || items[0].Request.AttributeID != ua.AttributeIDEventNotifier {
		t.Fatalf("Monitor = %+v, %v", items, err)
	}
	want := []event{{"e1", 100}, {"e2", 200}, {"e3", 300}}
	for _, e := range want {
		if err := srv.RaiseEvent(e.text, e.severity); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three events", 10*time.Second, func() bool { return len(events()) >= len(want) })
	if g := events(); !slices.Equal(g, want) {
		t.Fatalf("events %+v, want %+v", g, want)
	}

	restartAndResume(t, srv, c)
	waitFor(t, "the recreated subscription", 10*time.Second, func() bool { return slices.Contains(ce.kinds(), rc.PublishRecreated) })
	if err := srv.RaiseEvent("after", 700); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event after the restart", 10*time.Second, func() bool { return slices.Contains(events(), event{"after", 700}) })
}
