package rcsource_test

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
)

// TestCommandCopies: a command delivered twice — MQTT QoS 1 is at least
// once: a client that lost its PUBACK publishes again after its reconnect
// (the DUP flag is not passed on to subscribers, so the bridge sees a plain
// second copy), and a NATS client may retry — is written once. A copy that
// arrives after the answer gets the same answer again; one that arrives
// while the first is still being carried out gets no answer of its own.
// The same id with another body, and commands without id, are carried out.
func TestCommandCopies(t *testing.T) {
	for _, kind := range []busKind{busNATS, busMQTT} {
		t.Run(kind.String(), func(t *testing.T) { testCommandCopies(t, kind) })
	}
}

func testCommandCopies(t *testing.T, kind busKind) {
	sep := "."
	if kind == busMQTT {
		sep = "/"
	}
	e := newEnv(t, envConfig{bus: kind, rows: append(testRows(), pulsesRow(t, sep))})
	p := newPlant(t, testServerURI)
	writes := addPulses(p)
	e.online(p)
	route := e.route(prefix, "s1", "pulses")

	first := e.command(route, `{"id":"p1","value":1}`)
	again := e.command(route, `{"id":"p1","value":1}`)
	if !first.OK || again.Raw != first.Raw {
		t.Fatalf("copy answered %s, first answer %s: want the same", again.Raw, first.Raw)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("%d writes for a command and its copy, want 1", n)
	}
	if r := e.command(route, `{"id":"p1","value":2}`); !r.OK || writes.Load() != 2 {
		t.Fatalf("same id, other value: %s, %d writes; want carried out", r.Raw, writes.Load())
	}
	for range 2 {
		if r := e.command(route, `{"value":3}`); !r.OK {
			t.Fatalf("command without id: %s", r.Raw)
		}
	}
	if n := writes.Load(); n != 4 {
		t.Fatalf("%d writes after two commands without id, want 4", n)
	}

	if kind != busMQTT {
		return
	}
	// Two copies back to back, as a QoS 1 re-send after a reconnect: the
	// second arrives while the first is queued or being written.
	c := e.client.(*e2e.MQTTClient).C
	// A client of its own: MQTT subscriptions are per topic filter, and the
	// command client subscribes and unsubscribes the same result topic.
	results := e2e.DialMQTT(t, e.mochi.URL()).Watch(t, route+"/result")
	for range 2 {
		if tok := c.Publish(route, 1, false, `{"id":"p2","value":5}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	// A last command: the copies were handled before it.
	if r := e.command(route, `{"id":"p3","value":6}`); !r.OK {
		t.Fatalf("last command: %s", r.Raw)
	}
	if n := writes.Load(); n != 6 {
		t.Fatalf("%d writes, want 6: the copy of p2 was carried out", n)
	}
	// The bridge published p3's result after p2's: once the watcher has
	// it, it has every answer to p2.
	msgs := results.Await(t, 10*time.Second, "p3's result", func(m []e2e.Msg) bool {
		return slices.ContainsFunc(m, func(m e2e.Msg) bool { return e2e.DecodeReply(t, m.Payload).ID == "p3" })
	})
	var p2 []string
	for _, m := range msgs {
		if r := e2e.DecodeReply(t, m.Payload); r.ID == "p2" {
			p2 = append(p2, r.Raw)
		}
	}
	if len(p2) < 1 || len(p2) > 2 || !e2e.DecodeReply(t, []byte(p2[0])).OK || (len(p2) == 2 && p2[1] != p2[0]) {
		t.Fatalf("answers to p2 and its copy: %q; want one or two identical ok answers", p2)
	}
	t.Logf("p2 and its copy back to back: %d answers, 1 write", len(p2))
}

// pulsesRow maps the Pulses variable (addPulses) as a write-only row with
// the command route <prefix>/s1/pulses.
func pulsesRow(t *testing.T, sep string) mapping.Row {
	ref, err := mapping.ParseNodeRef("nsu=" + testNS + ";s=Pulses")
	if err != nil {
		t.Fatal(err)
	}
	return mapping.Row{Servers: []string{"*"}, Node: ref, Name: "pulses", Writable: true, WriteOnly: true,
		CommandRoute: "{prefix}" + sep + "{server}" + sep + "pulses"}
}

// addPulses adds the Int32 variable Pulses to p and returns the count of
// writes it took.
func addPulses(p *plant) *atomic.Int32 {
	var writes, value atomic.Int32
	p.AddDynamicVariable(nil, "Pulses", func() *ua.DataValue {
		return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(value.Load())}
	}, func(v *ua.Variant) ua.StatusCode {
		n, ok := v.Value().(int32)
		if !ok {
			return ua.StatusBadTypeMismatch
		}
		writes.Add(1)
		value.Store(n)
		return ua.StatusOK
	})
	return &writes
}

// TestCommandRedelivered: the broker delivers a QoS 1 command again after
// the bridge's connection broke before its PUBACK reached the broker (a
// gate holds back what the bridge sends, then cuts it). The bridge's
// persistent session gets the copy on reconnect: it is not written again,
// and its answer is the first one's.
func TestCommandRedelivered(t *testing.T) {
	m := e2e.StartMochi(t)
	gate := e2e.NewGate(t, strings.TrimPrefix(m.URL(), "tcp://"))
	bus := e2e.OpenMQTTBus(t, "tcp://"+gate.Addr())
	var copies atomic.Uint64
	b := e2e.StartBridge(t, e2e.BridgeConfig{
		Servers: []mapping.Server{{URI: testServerURI, Key: "s1"}}, Syntax: mapping.MQTT, Prefix: prefix, Bus: bus,
		Rows: []mapping.Row{pulsesRow(t, "/")},
		Tune: func(c *bridge.Config) { c.Metrics.CommandsDuplicate = func(n uint64) { copies.Add(n) } },
	})
	p := newPlant(t, testServerURI)
	writes := addPulses(p)
	conn, err := p.Dial(e2e.WithTimeout(t, 10*time.Second), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	b.Await(testServerURI, bridge.Online)

	client := e2e.DialMQTT(t, m.URL())
	route := prefix + "/s1/pulses"
	results := e2e.DialMQTT(t, m.URL()).Watch(t, route+"/result")
	if r := client.Command(t, route, `{"id":"a","value":1}`); !r.OK {
		t.Fatalf("first command: %s", r.Raw)
	}
	gate.Hold()
	if tok := client.C.Publish(route, 1, false, `{"id":"r1","value":9}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	e2e.WaitFor(t, "the write of r1", func() bool { return writes.Load() == 2 })
	gate.Close() // the bridge's PUBACK and result are lost with the connection
	gate.Open()
	e2e.WaitFor(t, "the broker to deliver r1 again", func() bool { return copies.Load() >= 1 })
	results.Await(t, 20*time.Second, "r1's answer", func(msgs []e2e.Msg) bool {
		return slices.ContainsFunc(msgs, func(m e2e.Msg) bool { return e2e.DecodeReply(t, m.Payload).ID == "r1" })
	})
	if r := client.Command(t, route, `{"id":"z","value":3}`); !r.OK {
		t.Fatalf("command after the reconnect: %s", r.Raw)
	}
	if n := writes.Load(); n != 3 {
		t.Fatalf("%d writes for 3 commands, one of them delivered twice: want 3", n)
	}
	for _, m := range results.Snapshot() {
		if r := e2e.DecodeReply(t, m.Payload); r.ID == "r1" && !r.OK {
			t.Errorf("answer to r1: %s", r.Raw)
		}
	}
}
