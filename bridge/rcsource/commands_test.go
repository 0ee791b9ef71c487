package rcsource_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
)

// TestCommands sends every kind of command through NATS requests to a
// bridge with a live session and checks the reply and the value inside the
// server: good writes and calls change it, every refused command leaves it
// alone.
func TestCommands(t *testing.T) {
	for _, kind := range []busKind{busNATS, busMQTT} {
		t.Run(kind.String(), func(t *testing.T) { testCommands(t, kind) })
	}
}

func testCommands(t *testing.T, kind busKind) {
	e := newEnv(t, envConfig{bus: kind})
	p := newPlant(t, testServerURI)
	e.online(p)

	set := func(name string) string { return e.route(prefix, "s1", name, "set") }
	call := e.route(prefix, "s1", "add", "call")
	type check struct {
		node *ua.NodeID
		want any
	}
	tests := []struct {
		name    string
		subject string
		payload string
		ok      bool
		status  ua.StatusCode
		errHas  string // part of the error text
		check   check
	}{
		{"write double", set("speed"), `{"id":"c1","value":1234.5}`, true, ua.StatusOK, "", check{p.speed, 1234.5}},
		{"write byte", set("level"), `{"id":"c2","value":200}`, true, ua.StatusOK, "", check{p.level, byte(200)}},
		{"write string", set("mode"), `{"id":"c3","value":"manual"}`, true, ua.StatusOK, "", check{p.mode, "manual"}},
		{"out of range", set("level"), `{"id":"c4","value":300}`, false, ua.StatusBadOutOfRange, "Byte", check{p.level, byte(200)}},
		{"fraction for an integer", set("level"), `{"id":"c5","value":1.5}`, false, ua.StatusBadTypeMismatch, "", check{p.level, byte(200)}},
		{"string for a double", set("speed"), `{"id":"c6","value":"fast"}`, false, ua.StatusBadTypeMismatch, "", check{p.speed, 1234.5}},
		{"malformed json", set("speed"), `{"id":"c7","value":`, false, ua.StatusBadDecodingError, "", check{p.speed, 1234.5}},
		{"not an object", set("speed"), `42`, false, ua.StatusBadDecodingError, "", check{p.speed, 1234.5}},
		{"unknown member", set("speed"), `{"id":"c9","value":1,"force":true}`, false, ua.StatusBadDecodingError, "force", check{p.speed, 1234.5}},
		{"no value", set("speed"), `{"id":"c10"}`, false, ua.StatusBadDecodingError, "value", check{p.speed, 1234.5}},
		{"read-only row", set("temp"), `{"id":"c11","value":99}`, false, ua.StatusBadNotWritable, "not writable in the mapping", check{p.temp, 20.5}},
		{"server refuses writing", set("locked"), `{"id":"c12","value":7}`, false, ua.StatusBadNotWritable, "AccessLevel", check{p.locked, int32(42)}},
		{"node missing on the server", set("missing"), `{"id":"c13","value":7}`, false, ua.StatusBadNodeIDUnknown, "unavailable", check{}},
		{"unknown row", set("nosuch"), `{"id":"u1","value":7}`, false, ua.StatusBadNodeIDUnknown, "no such command route", check{p.speed, 1234.5}},
		{"unknown server", e.route(prefix, "s9", "speed", "set"), `{"id":"u2","value":7}`, false, ua.StatusBadNodeIDUnknown, "no such command route", check{p.speed, 1234.5}},
		{"unknown method", e.route(prefix, "s1", "nosuch", "call"), `{"id":"u3","args":[]}`, false, ua.StatusBadNodeIDUnknown, "no such command route", check{p.speed, 1234.5}},
		{"unknown route, malformed JSON", set("nosuch"), `{"id":`, false, ua.StatusBadNodeIDUnknown, "nosuch", check{p.speed, 1234.5}},
		{"method call", call, `{"id":"c14","args":[1.5,2]}`, true, ua.StatusOK, "", check{}},
		{"method call, wrong argument count", call, `{"id":"c15","args":[1.5]}`, false, ua.StatusBadTypeMismatch, "2 arguments", check{}},
		{"method call, wrong argument type", call, `{"id":"c16","args":[1.5,"x"]}`, false, ua.StatusBadTypeMismatch, "args[1]", check{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.command(tc.subject, tc.payload)
			if r.OK != tc.ok || ua.StatusCode(r.Status.Code) != tc.status {
				t.Fatalf("reply %s: want ok=%v status %v", r.Raw, tc.ok, tc.status)
			}
			if want := idOf(tc.payload); r.ID != want {
				t.Errorf("reply id %q, want %q", r.ID, want)
			}
			switch {
			case tc.ok && r.Error != nil:
				t.Errorf("successful reply with error %q", *r.Error)
			case !tc.ok && (r.Error == nil || !strings.Contains(*r.Error, tc.errHas)):
				t.Errorf("error text of %s does not mention %q", r.Raw, tc.errHas)
			}
			if tc.check.node != nil {
				if got := p.value(t, tc.check.node); got != tc.check.want {
					t.Errorf("server value %v (%T), want %v (%T)", got, got, tc.check.want, tc.check.want)
				}
			}
		})
	}
	t.Run("method outputs", func(t *testing.T) {
		r := e.command(call, `{"id":"sum","args":[40,2]}`)
		if !r.OK || len(r.Outputs) != 1 || !strings.Contains(string(r.Outputs[0]), "42") {
			t.Fatalf("reply %s: want ok with output 42", r.Raw)
		}
	})
}

// idOf returns the "id" of a test payload, "" when it has none that
// parses.
func idOf(payload string) string {
	i := strings.Index(payload, `"id":"`)
	if i < 0 || !strings.HasSuffix(payload, "}") {
		return ""
	}
	rest := payload[i+6:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestCommandOffline: commands for a server without a session are refused
// with a reply that says so, before and after its session.
func TestCommandOffline(t *testing.T) {
	e := newEnv(t, envConfig{})
	r := e.command(prefix+".s1.speed.set", `{"id":"off","value":1}`)
	if r.OK || ua.StatusCode(r.Status.Code) != ua.StatusBadServerNotConnected || r.Error == nil || !strings.Contains(*r.Error, "offline") {
		t.Fatalf("reply %s: want BadServerNotConnected saying offline", r.Raw)
	}

	p := newPlant(t, testServerURI)
	relay := e.online(p)
	if r := e.command(prefix+".s1.speed.set", `{"id":"on","value":2}`); !r.OK {
		t.Fatalf("online write: %s", r.Raw)
	}
	relay.Close()
	e.Await(testServerURI, bridge.Resuming)
	r = e.command(prefix+".s1.speed.set", `{"id":"res","value":3}`)
	if r.OK || ua.StatusCode(r.Status.Code) != ua.StatusBadServerNotConnected || !strings.Contains(*r.Error, "resuming") {
		t.Fatalf("reply %s: want BadServerNotConnected saying resuming", r.Raw)
	}
	if got := p.value(t, p.speed); got != 2.0 {
		t.Errorf("server value %v, want 2 (the refused write must not arrive)", got)
	}
}

// TestCommandRateLimit: a flood of commands beyond the token bucket is
// refused with BadTooManyOperations; the bucket lets the burst through.
func TestCommandRateLimit(t *testing.T) {
	const burst = 5
	e := newEnv(t, envConfig{tune: func(c *bridge.Config) {
		c.Servers = []bridge.ServerConfig{{URI: testServerURI, CommandRate: 0.001, CommandBurst: burst}}
	}})
	p := newPlant(t, testServerURI)
	e.online(p)

	var ok, limited int
	for i := range 3 * burst {
		r := e.command(prefix+".s1.speed.set", `{"id":"f","value":`+itoa(i)+`}`)
		switch {
		case r.OK:
			ok++
		case ua.StatusCode(r.Status.Code) == ua.StatusBadTooManyOperations && strings.Contains(*r.Error, "per second"):
			limited++
		default:
			t.Fatalf("unexpected reply %s", r.Raw)
		}
	}
	if ok != burst || limited != 2*burst {
		t.Fatalf("%d carried out and %d limited, want %d and %d", ok, limited, burst, 2*burst)
	}
	if got := p.value(t, p.speed); got != float64(burst-1) {
		t.Errorf("server value %v, want %d (the last write let through)", got, burst-1)
	}
}

// TestCommandQueueFull: commands beyond the queue are refused with
// BadTooManyOperations, without blocking the bus adapter.
func TestCommandQueueFull(t *testing.T) {
	e := newEnv(t, envConfig{tune: func(c *bridge.Config) {
		c.CommandQueue = 1
		c.Servers = []bridge.ServerConfig{{URI: testServerURI, CommandRate: 1e6, CommandBurst: 1000}}
	}})
	p := newPlant(t, testServerURI)
	relay := e.online(p)

	// Freeze the server: the first write hangs in the worker, the second
	// fills the queue, the rest are refused at once.
	relay.Freeze()
	inbox := e.client.(*e2e.NATSClient).NC.NewRespInbox()
	nc := e.client.(*e2e.NATSClient).NC
	replies := e.client.Watch(t, inbox)
	for i := range 5 {
		if err := nc.PublishRequest(prefix+".s1.speed.set", inbox, []byte(`{"id":"q`+itoa(i)+`","value":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := replies.Await(t, 10*time.Second, "busy replies", func(m []e2e.Msg) bool { return len(m) >= 3 })
	for _, m := range msgs[:3] {
		r := e2e.DecodeReply(t, m.Payload)
		if ua.StatusCode(r.Status.Code) != ua.StatusBadTooManyOperations || !strings.Contains(*r.Error, "queue full") {
			t.Fatalf("reply %s: want BadTooManyOperations, queue full", r.Raw)
		}
	}
	relay.Thaw()
	replies.Await(t, 10*time.Second, "all replies", func(m []e2e.Msg) bool { return len(m) == 5 })
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestOnlyCommandsAnswered: requests on data, status and events routes,
// or on routes of another depth than the command routes, get no reply from
// the bridge; with NoUnknownRoutes an unknown command route gets none
// either, while declared routes still work.
func TestOnlyCommandsAnswered(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run("NoUnknownRoutes="+strconv.FormatBool(off), func(t *testing.T) {
			e := newEnv(t, envConfig{tune: func(c *bridge.Config) { c.NoUnknownRoutes = off }})
			p := newPlant(t, testServerURI)
			e.online(p)
			nc := e.client.(*e2e.NATSClient).NC
			silent := []string{
				prefix + ".s1.speed", prefix + ".status.s1", prefix + ".status.s1.events",
				prefix + ".s1.speed.set.more", prefix + ".s1.set",
			}
			if off {
				silent = append(silent, prefix+".s1.nosuch.set")
			} else if r := e.command(prefix+".s1.nosuch.set", `{"id":"u"}`); ua.StatusCode(r.Status.Code) != ua.StatusBadNodeIDUnknown {
				t.Fatalf("unknown route: reply %s, want BadNodeIdUnknown", r.Raw)
			}
			for _, subj := range silent {
				if m, err := nc.Request(subj, []byte(`{"id":"x","value":1}`), 300*time.Millisecond); err == nil {
					t.Errorf("request on %q answered: %s", subj, m.Data)
				}
			}
			if r := e.command(prefix+".s1.speed.set", `{"id":"ok","value":5}`); !r.OK {
				t.Fatalf("declared route: %s", r.Raw)
			}
		})
	}
}
