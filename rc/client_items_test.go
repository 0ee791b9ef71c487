package rc_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// counters are dynamic int32 variables of an rctest server.
type counters struct {
	srv   *rctest.Server
	vals  []*atomic.Int32
	nodes []*ua.NodeID
}

func addCounters(srv *rctest.Server, n int) *counters {
	cs := &counters{srv: srv}
	for i := range n {
		v := new(atomic.Int32)
		cs.vals = append(cs.vals, v)
		cs.nodes = append(cs.nodes, srv.AddDynamicVariable(nil, fmt.Sprintf("C%d", i), func() *ua.DataValue {
			return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp, Value: ua.MustVariant(v.Load()), SourceTimestamp: time.Now()}
		}, nil))
	}
	return cs
}

// set changes counter i to v and tells the server.
func (cs *counters) set(i int, v int32) {
	cs.vals[i].Store(v)
	cs.srv.Changed(cs.nodes[i])
}

// seen records the values delivered per client handle.
type seen struct {
	mu      sync.Mutex
	vals    map[uint32][]int32
	changed chan struct{}
}

func consume(t *testing.T, c *rc.Client) *seen {
	s := &seen{vals: make(map[uint32][]int32), changed: make(chan struct{})}
	notes := c.Notifications()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range notes {
			s.mu.Lock()
			for _, dc := range n.DataChanges {
				if v, ok := dc.Value.Value.Value().(int32); ok {
					s.vals[dc.ClientHandle] = append(s.vals[dc.ClientHandle], v)
				}
			}
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			n.Ack()
		}
	}()
	t.Cleanup(func() {
		_ = c.Close(ctxTimeout(t, 5*time.Second))
		<-done
	})
	return s
}

// await waits until handle h got value v and returns everything seen.
func (s *seen) await(t *testing.T, h uint32, v int32) map[uint32][]int32 {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		got, changed := slices.Contains(s.vals[h], v), s.changed
		snap := make(map[uint32][]int32, len(s.vals))
		for k, vs := range s.vals {
			snap[k] = slices.Clone(vs)
		}
		s.mu.Unlock()
		if got {
			return snap
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("handle %d never got %d; seen %v", h, v, snap)
		}
	}
}

// serverItem returns the server's view of the monitored item with client
// handle h.
func serverItem(t *testing.T, srv *rctest.Server, h uint32) rctest.MonitoredItem {
	t.Helper()
	for _, it := range srv.MonitoredItems() {
		if it.Parameters != nil && it.Parameters.ClientHandle == h {
			return it
		}
	}
	t.Fatalf("the server has no item with client handle %d", h)
	return rctest.MonitoredItem{}
}

// TestModifyItemsAndMonitoringMode: ModifyItems and SetMonitoringMode are
// batched by the server's MaxMonitoredItemsPerCall, report per item, take
// effect on the server (a disabled item reports nothing), and survive a
// server restart: the recreated items have their current parameters and
// modes.
func TestModifyItemsAndMonitoringMode(t *testing.T) {
	const limit, n = 2, 5
	srv := newServer(t, rctest.Options{MaxMonitoredItemsPerCall: limit})
	cs := addCounters(srv, n)
	events := newEventLog()
	c, relay := build(t, newFactory(t, rc.ClientConfig{OnClientEvent: events.record}), srv)
	sub, err := c.Subscribe(ctxTimeout(t, 5*time.Second), rc.SubscriptionParams{PublishingInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]rc.MonitorRequest, n)
	for i := range reqs {
		reqs[i] = rc.MonitorRequest{NodeID: cs.nodes[i]}
	}
	items, err := sub.Monitor(ctxTimeout(t, 5*time.Second), reqs...)
	if err != nil {
		t.Fatal(err)
	}
	h := make([]uint32, n)
	for i, it := range items {
		if it.Status != ua.StatusOK || it.Mode != ua.MonitoringModeReporting {
			t.Fatalf("item %d: %+v", i, it)
		}
		h[i] = it.ClientHandle
	}
	got := consume(t, c)
	got.await(t, h[0], 0) // the initial values

	filter := &rc.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValueTimestamp, DeadbandType: ua.DeadbandTypeAbsolute, DeadbandValue: 0.5}
	t.Run("Modify", func(t *testing.T) {
		// Item 4 vanishes behind the client's back: its modify fails alone.
		if _, err := rc.Send(ctxTimeout(t, 5*time.Second), c, &ua.DeleteMonitoredItemsRequest{SubscriptionID: sub.ID(), MonitoredItemIDs: []uint32{items[4].ID}}); err != nil {
			t.Fatal(err)
		}
		mods := make([]rc.ModifyRequest, n)
		for i := range mods {
			mods[i] = rc.ModifyRequest{ClientHandle: h[i], SamplingInterval: 250 * time.Millisecond, QueueSize: 5, Filter: filter}
		}
		calls := srv.ItemCalls()
		res, err := sub.ModifyItems(ctxTimeout(t, 5*time.Second), mods...)
		if err != nil {
			t.Fatal(err)
		}
		if d := srv.ItemCalls() - calls; d != (n+limit-1)/limit {
			t.Errorf("%d ModifyMonitoredItems calls for %d items, want %d (limit %d)", d, n, (n+limit-1)/limit, limit)
		}
		for i, it := range res[:4] {
			if it.Status != ua.StatusOK || it.ClientHandle != h[i] || it.RevisedQueueSize != 5 ||
				it.Request.SamplingInterval != 250*time.Millisecond || it.Request.Filter != filter {
				t.Errorf("result %d: %+v", i, it)
			}
			p := serverItem(t, srv, h[i]).Parameters
			df, _ := p.Filter.Value.(*ua.DataChangeFilter)
			if p.SamplingInterval != 250 || p.QueueSize != 5 || p.DiscardOldest || df == nil || df.DeadbandValue != 0.5 {
				t.Errorf("server item %d: %+v filter %+v", i, p, df)
			}
		}
		if res[4].Status != ua.StatusBadMonitoredItemIDInvalid {
			t.Errorf("result of the deleted item: %+v", res[4])
		}
		// The subscription remembers the new parameters of the modified
		// items only.
		kept := sub.Items()
		if len(kept) != n {
			t.Fatalf("%d items kept", len(kept))
		}
		if kept[0].Request.QueueSize != 5 || kept[4].Request.QueueSize != 0 {
			t.Errorf("items kept: %+v", kept)
		}
		if _, err := sub.Unmonitor(ctxTimeout(t, 5*time.Second), h[4]); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.ModifyItems(ctxTimeout(t, 5*time.Second), rc.ModifyRequest{ClientHandle: 999999}); !errors.Is(err, rc.ErrInvalidRequest) {
			t.Errorf("ModifyItems with an unknown handle = %v, want ErrInvalidRequest", err)
		}
	})

	t.Run("Mode", func(t *testing.T) {
		calls := srv.ItemCalls()
		st, err := sub.SetMonitoringMode(ctxTimeout(t, 5*time.Second), ua.MonitoringModeDisabled, h[0], h[1], h[2])
		if err != nil {
			t.Fatal(err)
		}
		if d := srv.ItemCalls() - calls; d != 2 {
			t.Errorf("%d SetMonitoringMode calls for 3 items, want 2 (limit %d)", d, limit)
		}
		if !slices.Equal(st, []ua.StatusCode{ua.StatusOK, ua.StatusOK, ua.StatusOK}) {
			t.Fatalf("statuses %v", st)
		}
		for i, it := range sub.Items() {
			want := ua.MonitoringModeReporting
			if i < 3 {
				want = ua.MonitoringModeDisabled
			}
			if it.Mode != want || serverItem(t, srv, it.ClientHandle).Mode != want {
				t.Errorf("item %d: mode %v, server %v; want %v", i, it.Mode, serverItem(t, srv, it.ClientHandle).Mode, want)
			}
		}
		// A disabled item reports nothing; a reporting one does.
		cs.set(0, 10)
		cs.set(3, 30)
		if seen := got.await(t, h[3], 30); slices.Contains(seen[h[0]], 10) {
			t.Errorf("a disabled item reported: %v", seen[h[0]])
		}
		if _, err := sub.SetMonitoringMode(ctxTimeout(t, 5*time.Second), ua.MonitoringModeReporting, h[0]); err != nil {
			t.Fatal(err)
		}
		cs.set(0, 11)
		got.await(t, h[0], 11)
		if _, err := sub.SetMonitoringMode(ctxTimeout(t, 5*time.Second), ua.MonitoringMode(7), h[0]); !errors.Is(err, rc.ErrInvalidRequest) {
			t.Errorf("SetMonitoringMode(7) = %v, want ErrInvalidRequest", err)
		}
		if _, err := sub.SetMonitoringMode(ctxTimeout(t, 5*time.Second), ua.MonitoringModeSampling, 999999); !errors.Is(err, rc.ErrInvalidRequest) {
			t.Errorf("SetMonitoringMode of an unknown handle = %v, want ErrInvalidRequest", err)
		}
	})

	t.Run("Recreated", func(t *testing.T) {
		want := sub.Items() // h0 reporting, h1 and h2 disabled, h3 reporting; all modified
		srv.Close()
		relay.Close()
		waitDone(t, c)
		srv2 := newServer(t, rctest.Options{MaxMonitoredItemsPerCall: limit})
		cs2 := addCounters(srv2, n)
		ln := listen(t)
		s, r := reverseConnect(t, srv2, ln)
		t.Cleanup(r.Close)
		if outcome, err := c.Resume(ctxTimeout(t, 10*time.Second), s); err != nil || outcome != rc.SessionRecreated {
			t.Fatalf("Resume = %v, %v", outcome, err)
		}
		events.awaitKind(t, rc.PublishRecreated)
		for _, w := range want {
			it := serverItem(t, srv2, w.ClientHandle)
			df, _ := it.Parameters.Filter.Value.(*ua.DataChangeFilter)
			if it.Mode != w.Mode || it.Parameters.SamplingInterval != 250 || it.Parameters.QueueSize != 5 || df == nil || df.Trigger != filter.Trigger {
				t.Errorf("recreated item %d: mode %v, %+v, filter %+v; want mode %v and the modified parameters", w.ClientHandle, it.Mode, it.Parameters, df, w.Mode)
			}
		}
		if kept := sub.Items(); len(kept) != len(want) || kept[1].Mode != ua.MonitoringModeDisabled {
			t.Errorf("items after the recreate: %+v", kept)
		}
		// The recreated items behave by their modes.
		cs2.set(1, 21)
		cs2.set(3, 31)
		if seen := got.await(t, h[3], 31); slices.Contains(seen[h[1]], 21) {
			t.Errorf("a recreated disabled item reported: %v", seen[h[1]])
		}
	})
}

// awaitKind waits for an event of kind.
func (l *eventLog) awaitKind(t *testing.T, kind rc.ClientEventKind) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		evs, changed := l.snapshot()
		if slices.Contains(kindsOf(evs), kind) {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no %s event; events %v", kind, kindsOf(evs))
		}
	}
}

// TestEventItemRequests: an event item asks for the EventNotifier
// attribute with its EventFilter, keeps the filter through ModifyItems, and
// refuses a data change filter. (gopcua's server raises no events; the
// events themselves are tested against node-opcua.)
func TestEventItemRequests(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	c, _ := build(t, newFactory(t, rc.ClientConfig{}), srv)
	sub, err := c.Subscribe(ctxTimeout(t, 5*time.Second), rc.SubscriptionParams{})
	if err != nil {
		t.Fatal(err)
	}
	server := ua.NewNumericNodeID(0, 2253) // the Server object
	filter := rc.SelectEventFields("Message", "Severity")
	if _, err := sub.Monitor(ctxTimeout(t, 5*time.Second), rc.MonitorRequest{NodeID: server, EventFilter: filter,
		Filter: &rc.DataChangeFilter{}}); !errors.Is(err, rc.ErrInvalidRequest) {
		t.Fatalf("Monitor with both filters = %v, want ErrInvalidRequest", err)
	}
	items, err := sub.Monitor(ctxTimeout(t, 5*time.Second), rc.MonitorRequest{NodeID: server, EventFilter: filter})
	if err != nil || items[0].Status != ua.StatusOK {
		t.Fatalf("Monitor = %+v, %v", items, err)
	}
	h := items[0].ClientHandle
	check := func(t *testing.T) {
		t.Helper()
		p := serverItem(t, srv, h).Parameters
		ef, ok := p.Filter.Value.(*ua.EventFilter)
		if !ok || len(ef.SelectClauses) != 2 || ef.SelectClauses[1].BrowsePath[0].Name != "Severity" {
			t.Fatalf("server item filter %#v, want the event filter", p.Filter.Value)
		}
	}
	check(t)
	if items[0].Request.AttributeID != ua.AttributeIDEventNotifier {
		t.Errorf("attribute %v, want EventNotifier", items[0].Request.AttributeID)
	}
	if _, err := sub.ModifyItems(ctxTimeout(t, 5*time.Second), rc.ModifyRequest{ClientHandle: h, Filter: &rc.DataChangeFilter{}}); !errors.Is(err, rc.ErrInvalidRequest) {
		t.Errorf("ModifyItems with a data change filter on an event item = %v, want ErrInvalidRequest", err)
	}
	res, err := sub.ModifyItems(ctxTimeout(t, 5*time.Second), rc.ModifyRequest{ClientHandle: h, QueueSize: 50})
	if err != nil || res[0].Status != ua.StatusOK || res[0].Request.EventFilter != filter {
		t.Fatalf("ModifyItems = %+v, %v", res, err)
	}
	check(t)
}
