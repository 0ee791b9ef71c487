package main

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"github.com/rcbridge/rcbridge/rc"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRegistry(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	srv := config.DefaultServer()
	a, b := srv, srv
	a.URI, b.URI = "urn:a", "urn:b"
	r := newRegistry([]config.Server{a, b}, map[string]string{"urn:a": "a", "urn:b": "b"}, clock.now)

	if got := r.states(); got[stateOffline] != 2 || got[stateOnline] != 0 {
		t.Errorf("states %v", got)
	}
	t0 := clock.now()
	r.setState("urn:a", stateOnline)
	r.setState("urn:unknown", stateOnline)
	r.setItems("urn:a", 12)
	r.observe(rc.Event{Kind: rc.EventAccepted, ServerURI: "urn:a", EndpointURL: "opc.tcp://a:4840", Remote: netip.MustParseAddrPort("10.0.0.7:50000")})
	r.observe(rc.Event{Kind: rc.EventRejected, ServerURI: "urn:b", Err: errors.New("bad EndpointUrl")})
	r.observe(rc.Event{Kind: rc.EventDropped, ServerURI: "urn:b", Err: rc.ErrListenerClosed}) // shutdown: not an error of b

	// 600 notifications and 300 publishes over 60 s of samples.
	for range 12 {
		clock.add(rateSample)
		r.addNotifications("urn:a", 50)
		r.addPublished("urn:a", 25)
		r.sample()
	}
	r.setState("urn:a", stateOnline) // no change: Since stays
	snap := r.snapshot()
	if len(snap) != 2 || snap[0].URI != "urn:a" || snap[1].URI != "urn:b" {
		t.Fatalf("snapshot order %+v", snap)
	}
	va, vb := snap[0], snap[1]
	if va.State != stateOnline || !va.Since.Equal(t0) || va.Items != 12 ||
		va.RemoteAddress != "10.0.0.7:50000" || va.EndpointURL != "opc.tcp://a:4840" || va.LastAdmission == nil ||
		va.Notifications != 600 || va.Published != 300 || va.Key != "a" {
		t.Errorf("a = %+v", va)
	}
	if math.Abs(va.Rates.Notifications-10) > 1e-9 || math.Abs(va.Rates.Published-5) > 1e-9 {
		t.Errorf("rates %+v, want 10/s and 5/s", va.Rates)
	}
	if vb.LastError != "bad EndpointUrl" || vb.LastErrorAt == nil || vb.Rates.Notifications != 0 {
		t.Errorf("b = %+v", vb)
	}
	if got := r.states(); got[stateOffline] != 1 || got[stateOnline] != 1 {
		t.Errorf("states %v", got)
	}
	// The window slides: a minute without traffic brings the rate to 0.
	for range 13 {
		clock.add(rateSample)
		r.sample()
	}
	if got := r.snapshot()[0].Rates; got.Notifications != 0 {
		t.Errorf("rates after an idle minute: %+v", got)
	}
}

// TestObserveAdmission: every admission outcome has its series, and
// EventReceived is not an outcome.
func TestObserveAdmission(t *testing.T) {
	m := newMetrics("test", func() map[string]int { return nil })
	for _, k := range []rc.EventKind{rc.EventReceived, rc.EventAccepted, rc.EventRejected, rc.EventMalformed,
		rc.EventTimedOut, rc.EventEvicted, rc.EventDropped, rc.EventDropped} {
		m.observeAdmission(rc.Event{Kind: k})
	}
	want := map[string]float64{"accepted": 1, "rejected": 1, "malformed": 1, "timed_out": 1, "evicted": 1, "dropped": 2}
	for outcome, n := range want {
		if got := testutil.ToFloat64(m.admissions.WithLabelValues(outcome)); got != n {
			t.Errorf("admissions{outcome=%q} = %v, want %v", outcome, got, n)
		}
	}
	if got := testutil.CollectAndCount(m.admissions); got != len(want) {
		t.Errorf("%d admission series, want %d", got, len(want))
	}
}

// TestObserveClientEvent: every client event kind has its series.
func TestObserveClientEvent(t *testing.T) {
	m := newMetrics("test", func() map[string]int { return nil })
	kinds := []rc.ClientEventKind{rc.ClientActive, rc.ClientDisconnected, rc.PublishStalled, rc.ClientResuming, rc.ClientResumed,
		rc.ClientResumeFailed, rc.PublishGap, rc.PublishTransferred, rc.PublishRecreated, rc.ClientClosed, rc.PublishGap}
	for _, k := range kinds {
		m.observeClientEvent(rc.ClientEvent{Kind: k})
	}
	for _, k := range strings.Fields(clientEventKinds) {
		want := 1.0
		if k == "gap" {
			want = 2
		}
		if got := testutil.ToFloat64(m.clientEvents.WithLabelValues(k)); got != want {
			t.Errorf("client_events_total{event=%q} = %v, want %v", k, got, want)
		}
	}
	if got := testutil.CollectAndCount(m.clientEvents); got != len(strings.Fields(clientEventKinds)) {
		t.Errorf("%d client event series, want %d", got, len(strings.Fields(clientEventKinds)))
	}
}
