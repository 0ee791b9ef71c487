package rcsource_test

import (
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
)

// counters records the bridge's server metrics.
type counters struct {
	sessions, resumes, resumeFailures, commands atomic.Int64
}

func (c *counters) hook(cfg *bridge.Config) {
	add := func(v *atomic.Int64) bridge.Counter { return func(n uint64) { v.Add(int64(n)) } }
	cfg.Metrics.Server = func(string) bridge.ServerMetrics {
		return bridge.ServerMetrics{
			Sessions: add(&c.sessions), Resumes: add(&c.resumes), ResumeFailures: add(&c.resumeFailures),
			Commands: add(&c.commands),
		}
	}
}

// TestPresence follows a server through its states: offline at start,
// online with a session, resuming when its connection drops, online again
// on the same session when it dials again, offline when it stays away
// longer than ResumeTimeout, and offline when the bridge stops.
func TestPresence(t *testing.T) {
	for _, kind := range []busKind{busNATS, busMQTT} {
		t.Run(kind.String(), func(t *testing.T) { testPresence(t, kind) })
	}
}

func testPresence(t *testing.T, kind busKind) {
	var n counters
	e := newEnv(t, envConfig{bus: kind, tune: func(c *bridge.Config) {
		c.ResumeTimeout = time.Second
		n.hook(c)
	}})
	subject := e.route(prefix, "status", "s1")
	e.status.Await(t, 10*time.Second, "initial offline", func(m []e2e.Msg) bool { return len(presences(t, m, subject)) >= 1 })

	p := newPlant(t, testServerURI)
	relay := e.online(p)
	relay.Close()
	e.Await(testServerURI, bridge.Resuming)
	e.online(p)
	// Silence: the session is given up after ResumeTimeout.
	p.Close()
	e.Await(testServerURI, bridge.Offline)

	want := []bridge.PresenceState{bridge.Offline, bridge.Online, bridge.Resuming, bridge.Online, bridge.Resuming, bridge.Offline}
	msgs := e.status.Await(t, 10*time.Second, "presence sequence", func(m []e2e.Msg) bool { return len(presences(t, m, subject)) >= len(want) })
	ps := presences(t, msgs, subject)
	if got := states(ps); !slices.Equal(got, want) {
		t.Fatalf("presence states %v, want %v", got, want)
	}
	for i, p := range ps {
		if p.Server != testServerURI || p.Since.IsZero() || (i > 0 && p.Since.Before(ps[i-1].Since)) {
			t.Errorf("presence %d = %+v: want server %q and a non-decreasing since", i, p, testServerURI)
		}
	}
	if s, r := n.sessions.Load(), n.resumes.Load(); s != 1 || r != 1 {
		t.Errorf("%d sessions and %d resumes, want 1 and 1", s, r)
	}

	// A new dial after offline gets a new session; stopping the bridge
	// says offline last.
	p2 := newPlant(t, testServerURI)
	e.online(p2)
	e.Stop()
	msgs = e.status.Await(t, 10*time.Second, "final offline", func(m []e2e.Msg) bool { return len(presences(t, m, subject)) >= len(want)+2 })
	if got := states(presences(t, msgs, subject))[len(want):]; !slices.Equal(got, []bridge.PresenceState{bridge.Online, bridge.Offline}) {
		t.Fatalf("after the restart: %v, want [online offline]", got)
	}
	if s := n.sessions.Load(); s != 2 {
		t.Errorf("%d sessions, want 2", s)
	}
}

// TestSecondConnection: a server that dials again while its session is
// online gets no second session; the extra connection waits as a spare
// and carries the session when the first one drops.
func TestSecondConnection(t *testing.T) {
	var n counters
	e := newEnv(t, envConfig{tune: n.hook})
	p := newPlant(t, testServerURI)
	first := e.online(p)

	e.dial(p) // the spare, held by the broker
	time.Sleep(300 * time.Millisecond)
	if s := n.sessions.Load(); s != 1 {
		t.Fatalf("%d sessions after a second connection, want 1", s)
	}
	if r := e.command(prefix+".s1.speed.set", `{"id":"a","value":1}`); !r.OK {
		t.Fatalf("write on the first connection: %s", r.Raw)
	}
	first.Close()
	// With the spare at hand, resuming lasts a millisecond or two: too short
	// for AwaitState, which sees only the current state. The presence
	// messages on the bus have every state in order.
	subject := e.route(prefix, "status", "s1")
	want := []bridge.PresenceState{bridge.Offline, bridge.Online, bridge.Resuming, bridge.Online}
	msgs := e.status.Await(t, 10*time.Second, "resumed on the spare", func(m []e2e.Msg) bool { return len(presences(t, m, subject)) >= len(want) })
	if got := states(presences(t, msgs, subject)); !slices.Equal(got[:len(want)], want) {
		t.Fatalf("presence states %v, want %v first", got, want)
	}
	if s, r := n.sessions.Load(), n.resumes.Load(); s != 1 || r != 1 {
		t.Fatalf("%d sessions and %d resumes, want 1 and 1: the spare carries the same session", s, r)
	}
	if r := e.command(prefix+".s1.speed.set", `{"id":"b","value":2}`); !r.OK {
		t.Fatalf("write on the spare: %s", r.Raw)
	}
	if got := p.value(t, p.speed); got != 2.0 {
		t.Errorf("server value %v, want 2", got)
	}
}

// TestPresenceJetStream: with JetStream the presence is also in the KV
// bucket, under a valid key derived from the server key.
func TestPresenceJetStream(t *testing.T) {
	const uri = "urn:plant:line 1" // a server key with ':' and ' '
	e := newEnv(t, envConfig{servers: []string{uri}, bus: busJetStream})
	p := newPlant(t, uri)
	e.dial(p)
	e.Await(uri, bridge.Online)

	js, err := jetstream.New(e.client.(*e2e.NATSClient).NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx := e2e.WithTimeout(t, 10*time.Second)
	kv, err := js.KeyValue(ctx, "rcbridge_presence")
	if err != nil {
		t.Fatalf("presence bucket: %v", err)
	}
	var last bridge.Presence
	for ctx.Err() == nil {
		entry, err := kv.Get(ctx, "s1")
		if err == nil {
			if err := json.Unmarshal(entry.Value(), &last); err != nil {
				t.Fatal(err)
			}
			if last.State == bridge.Online {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last.State != bridge.Online || last.Server != uri {
		t.Fatalf("KV presence %+v, want online for %q", last, uri)
	}
}
