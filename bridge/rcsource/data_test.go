package rcsource_test

import (
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
)

// TestData: every published row's value reaches its route with its type;
// a change made by a write arrives too.
func TestData(t *testing.T) {
	for _, kind := range []busKind{busNATS, busJetStream, busMQTT} {
		t.Run(kind.String(), func(t *testing.T) {
			e := newEnv(t, envConfig{bus: kind})
			p := newPlant(t, testServerURI)
			e.online(p)
			want := map[string]struct{ typ, value string }{
				"speed": {"Double", "1500"}, "level": {"Byte", "7"}, "mode": {"String", `"auto"`},
				"locked": {"Int32", "42"}, "temp": {"Double", "20.5"},
			}
			for name, w := range want {
				msgs := e.data.On(e.route(prefix, "s1", name))
				d := e2e.DecodeData(t, msgs[0].Payload)
				if d.Server != testServerURI || d.Name != name || d.Type != w.typ || string(d.Value) != w.value || d.Status.Code != 0 {
					t.Errorf("%s: %s; want type %s value %s", name, msgs[0].Payload, w.typ, w.value)
				}
			}
			if r := e.command(e.route(prefix, "s1", "speed", "set"), `{"id":"w","value":99.25}`); !r.OK {
				t.Fatalf("write: %s", r.Raw)
			}
			e.data.Await(t, 10*time.Second, "the written value", func(msgs []e2e.Msg) bool {
				for _, m := range msgs {
					if m.Route == e.route(prefix, "s1", "speed") && string(e2e.DecodeData(t, m.Payload).Value) == "99.25" {
						return true
					}
				}
				return false
			})
			e.Stop()
			if st := e.Servers()[0].State; st != bridge.Offline {
				t.Errorf("state after Stop: %v", st)
			}
		})
	}
}

// TestSamplingIntervals: a row's sampling interval reaches the server in
// milliseconds (Part 4, 7.21): unset is the subscription's publishing
// interval, mapping.SampleFastest is 0 (the fastest practical rate).
func TestSamplingIntervals(t *testing.T) {
	rows := testRows()
	rows[1].SamplingInterval = mapping.SampleFastest
	rows[2].SamplingInterval = 250 * time.Millisecond
	e := newEnv(t, envConfig{bus: busNATS, rows: rows})
	p := newPlant(t, testServerURI)
	e.online(p)
	want := map[string]float64{"Speed": float64(bridge.DefaultPublishingInterval / time.Millisecond), "Level": 0, "Mode": 250}
	got := map[string]float64{}
	for _, it := range p.MonitoredItems() {
		got[it.NodeID.StringID()] = it.Parameters.SamplingInterval
	}
	for node, w := range want {
		if g, ok := got[node]; !ok || g != w {
			t.Errorf("%s: requested sampling interval %v (monitored: %t), want %v", node, g, ok, w)
		}
	}
}
