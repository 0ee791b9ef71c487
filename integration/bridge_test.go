//go:build integration

package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/integration/nodeua"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
)

// The bridge end to end: node-opcua dials the bridge with its native
// reverse connect; the bridge runs on a real bus (embedded NATS, Debian's
// mosquitto); the tests act as the bus's users.

const bridgePrefix = "rcb"

// bridgeBus is one bus the end-to-end tests run on.
type bridgeBus struct {
	name   string
	syntax mapping.Syntax
	open   func(t *testing.T) (bridge.Bus, e2e.Client)
}

func bridgeBuses() []bridgeBus {
	return []bridgeBus{
		{"nats", mapping.NATS, func(t *testing.T) (bridge.Bus, e2e.Client) {
			n := e2e.StartNATS(t, false)
			return e2e.OpenNATSBus(t, n.URL(), false, bridgePrefix), e2e.DialNATS(t, n.URL())
		}},
		{"mosquitto", mapping.MQTT, func(t *testing.T) (bridge.Bus, e2e.Client) {
			m := startMosquitto(t)
			return e2e.OpenMQTTBus(t, m.url()), e2e.DialMQTT(t, m.url())
		}},
	}
}

// nodeRef parses a node reference or fails the test.
func nodeRef(t testing.TB, s string) mapping.NodeRef {
	t.Helper()
	r, err := mapping.ParseNodeRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// commandRows maps node-opcua's test nodes for the command tests.
func commandRows(t testing.TB) []mapping.Row {
	ns := "nsu=" + nodeua.DefaultNamespaceURI + ";s="
	n := func(s string) mapping.NodeRef { return nodeRef(t, ns+s) }
	double, _ := mapping.ParseValueType("Double")
	all := []string{nodeua.DefaultApplicationURI}
	return []mapping.Row{
		{Servers: all, Node: n(nodeua.NodeMotor1Speed), Name: "speed", Writable: true},
		{Servers: all, Node: nodeRef(t, "/Objects/{"+nodeua.DefaultNamespaceURI+"}Line1/{"+nodeua.DefaultNamespaceURI+"}Motor1/{"+
			nodeua.DefaultNamespaceURI+"}Running"), Name: "running", Writable: true},
		{Servers: all, Node: n("Types.Byte"), Name: "byte", Writable: true},
		{Servers: all, Node: n("Types.Int64"), Name: "int64", Writable: true},
		{Servers: all, Node: n("Types.Int32Array"), Name: "array", Writable: true},
		{Servers: all, Node: n(nodeua.NodeReadOnly), Name: "readonly", Writable: true},
		{Servers: all, Node: n(nodeua.NodeOperatorOnly), Name: "operator", Writable: true},
		{Servers: all, Node: n(nodeua.NodeMotor2Speed), Name: "speed2"},
		{Servers: all, Object: n(nodeua.NodeMethods), Method: n(nodeua.NodeAdd), Name: "add", Arguments: []mapping.ValueType{double, double}},
	}
}

// TestBridgeNodeUACommands: writes and a method call through NATS requests
// and MQTT "set" messages reach node-opcua with correct replies; every
// class of bad command gets a reply saying why and leaves the server's
// value unchanged.
func TestBridgeNodeUACommands(t *testing.T) {
	for _, bb := range bridgeBuses() {
		t.Run(bb.name, func(t *testing.T) {
			bus, client := bb.open(t)
			b := e2e.StartBridge(t, e2e.BridgeConfig{
				Servers: []mapping.Server{{URI: nodeua.DefaultApplicationURI, Key: "line1"}},
				Syntax:  bb.syntax, Prefix: bridgePrefix, Rows: commandRows(t), Bus: bus,
				Tune: func(c *bridge.Config) {
					c.Servers = []bridge.ServerConfig{{URI: nodeua.DefaultApplicationURI, CommandRate: 1000, CommandBurst: 1000}}
				},
			})
			route := func(parts ...string) string {
				return e2e.Route(client, append([]string{bridgePrefix, "line1"}, parts...)...)
			}

			// Offline first: refused, nothing written anywhere.
			if r := client.Command(t, route("speed", "set"), `{"id":"early","value":1}`); r.OK ||
				ua.StatusCode(r.Status.Code) != ua.StatusBadServerNotConnected {
				t.Fatalf("command before the server dialed: %s", r.Raw)
			}
			srv := nodeua.Start(t, nodeua.Config{Hostname: "plc.invalid",
				ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{"opc.tcp://" + b.Addr()}}})
			b.Await(nodeua.DefaultApplicationURI, bridge.Online)

			tests := []struct {
				name, route, payload string
				ok                   bool
				status               ua.StatusCode
				errHas               string
				node                 string // checked through the server's own Read
				want                 any
			}{
				{"write double", route("speed", "set"), `{"id":"w1","value":1234.5}`, true, ua.StatusOK, "", nodeua.NodeMotor1Speed, 1234.5},
				{"write via browse path", route("running", "set"), `{"id":"w2","value":false}`, true, ua.StatusOK, "", nodeua.NodeMotor1Running, false},
				{"write byte", route("byte", "set"), `{"id":"w3","value":17}`, true, ua.StatusOK, "", "Types.Byte", uint8(17)},
				{"write int64 as string", route("int64", "set"), `{"id":"w4","value":"-9007199254740993"}`, true, ua.StatusOK, "", "Types.Int64", int64(-9007199254740993)},
				{"write array", route("array", "set"), `{"id":"w5","value":[5,6]}`, true, ua.StatusOK, "", "Types.Int32Array", []int32{5, 6}},
				{"byte out of range", route("byte", "set"), `{"id":"b1","value":300}`, false, ua.StatusBadOutOfRange, "Byte", "Types.Byte", uint8(17)},
				{"fraction for a byte", route("byte", "set"), `{"id":"b2","value":1.5}`, false, ua.StatusBadTypeMismatch, "", "Types.Byte", uint8(17)},
				{"string for a double", route("speed", "set"), `{"id":"b3","value":"fast"}`, false, ua.StatusBadTypeMismatch, "", nodeua.NodeMotor1Speed, 1234.5},
				{"scalar for an array", route("array", "set"), `{"id":"b4","value":5}`, false, ua.StatusBadTypeMismatch, "", "Types.Int32Array", []int32{5, 6}},
				{"malformed json", route("speed", "set"), `{"id":"b5","value":`, false, ua.StatusBadDecodingError, "", nodeua.NodeMotor1Speed, 1234.5},
				{"unknown member", route("speed", "set"), `{"id":"b6","value":1,"force":1}`, false, ua.StatusBadDecodingError, "force", nodeua.NodeMotor1Speed, 1234.5},
				{"read-only row", route("speed2", "set"), `{"id":"b7","value":1}`, false, ua.StatusBadNotWritable, "not writable in the mapping", nodeua.NodeMotor2Speed, nodeua.Motor2SpeedValue},
				{"node not writable", route("readonly", "set"), `{"id":"b8","value":1}`, false, ua.StatusBadNotWritable, "AccessLevel", nodeua.NodeReadOnly, nodeua.ReadOnlyValue},
				{"user may not write", route("operator", "set"), `{"id":"b9","value":1}`, false, ua.StatusBadUserAccessDenied, "user", nodeua.NodeOperatorOnly, nodeua.OperatorOnlyValue},
				{"unknown row", route("sped", "set"), `{"id":"u1","value":1}`, false, ua.StatusBadNodeIDUnknown, "no such command route", nodeua.NodeMotor1Speed, 1234.5},
				{"unknown method", route("sub", "call"), `{"id":"u2","args":[1,2]}`, false, ua.StatusBadNodeIDUnknown, "no such command route", "", nil},
				{"method call", route("add", "call"), `{"id":"m1","args":[40,2.5]}`, true, ua.StatusOK, "", "", nil},
				{"method, missing argument", route("add", "call"), `{"id":"m2","args":[40]}`, false, ua.StatusBadTypeMismatch, "2 arguments", "", nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					r := client.Command(t, tc.route, tc.payload)
					if r.OK != tc.ok || ua.StatusCode(r.Status.Code) != tc.status {
						t.Fatalf("reply %s: want ok=%v status %v", r.Raw, tc.ok, tc.status)
					}
					if !tc.ok && !strings.Contains(r.ErrorText(), tc.errHas) {
						t.Errorf("error of %s does not mention %q", r.Raw, tc.errHas)
					}
					if tc.node == "" {
						return
					}
					v, err := srv.Read(tc.node)
					if err != nil {
						t.Fatal(err)
					}
					if got := v.Value(); !equalValue(got, tc.want) {
						t.Errorf("%s on the server = %v (%T), want %v (%T)", tc.node, got, got, tc.want, tc.want)
					}
				})
			}
			r := client.Command(t, route("add", "call"), `{"id":"m3","args":[40,2.5]}`)
			if !r.OK || len(r.Outputs) != 1 {
				t.Fatalf("call reply %s", r.Raw)
			}
			var out struct {
				Type  string  `json:"type"`
				Value float64 `json:"value"`
			}
			if err := json.Unmarshal(r.Outputs[0], &out); err != nil || out.Value != 42.5 || out.Type != "Double" {
				t.Fatalf("call output %s (%v), want Double 42.5", r.Outputs[0], err)
			}
		})
	}
}

// equalValue compares server values, slices included.
func equalValue(got, want any) bool {
	if g, ok := got.([]int32); ok {
		w, _ := want.([]int32)
		return slices.Equal(g, w)
	}
	return got == want
}

// TestBridgeNodeUAPresence: the server's presence goes online when it dials
// in, resuming when its connections drop, online again on the same session,
// and offline when it stops for good.
func TestBridgeNodeUAPresence(t *testing.T) {
	for _, bb := range bridgeBuses() {
		t.Run(bb.name, func(t *testing.T) {
			bus, client := bb.open(t)
			status := client.Watch(t, e2e.Route(client, bridgePrefix, "status", "line1"))
			var resumes, sessions atomicCounter
			b := e2e.StartBridge(t, e2e.BridgeConfig{
				Servers: []mapping.Server{{URI: nodeua.DefaultApplicationURI, Key: "line1"}},
				Syntax:  bb.syntax, Prefix: bridgePrefix, Rows: commandRows(t), Bus: bus,
				Tune: func(c *bridge.Config) {
					c.ResumeTimeout = 2 * time.Second
					c.Metrics.Server = func(string) bridge.ServerMetrics {
						return bridge.ServerMetrics{Resumes: resumes.add, Sessions: sessions.add}
					}
				},
			})
			srv := nodeua.Start(t, nodeua.Config{Hostname: "plc.invalid",
				ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{"opc.tcp://" + b.Addr()}}})
			b.Await(nodeua.DefaultApplicationURI, bridge.Online)
			if n, err := srv.DropConnections(); err != nil || n != 1 {
				t.Fatalf("DropConnections = %d, %v", n, err)
			}
			b.Await(nodeua.DefaultApplicationURI, bridge.Resuming)
			b.Await(nodeua.DefaultApplicationURI, bridge.Online)
			srv.Stop()
			b.Await(nodeua.DefaultApplicationURI, bridge.Offline)

			want := []bridge.PresenceState{bridge.Offline, bridge.Online, bridge.Resuming, bridge.Online, bridge.Resuming, bridge.Offline}
			msgs := status.Await(t, 10*time.Second, "presence", func(m []e2e.Msg) bool { return len(m) >= len(want) })
			var got []bridge.PresenceState
			for _, m := range msgs {
				var p bridge.Presence
				if err := json.Unmarshal(m.Payload, &p); err != nil || p.Server != nodeua.DefaultApplicationURI || p.Since.IsZero() {
					t.Fatalf("presence %s (%v)", m.Payload, err)
				}
				got = append(got, p.State)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("presence %v, want %v", got, want)
			}
			if sessions.n.Load() != 1 || resumes.n.Load() != 1 {
				t.Errorf("%d sessions, %d resumes; want 1 and 1", sessions.n.Load(), resumes.n.Load())
			}
		})
	}
}

// atomicCounter counts a bridge metric.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) add(n uint64) { c.n.Add(int64(n)) }
