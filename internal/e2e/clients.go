package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/rcbridge/rcbridge/bridge/mqttbus/mqtttest"
)

// Msg is one message a Recorder saw.
type Msg struct {
	Route   string
	Payload []byte
}

// Recorder collects messages; safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	msgs []Msg
	more chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{more: make(chan struct{}, 1)} }

// Add records a message; payload is copied.
func (r *Recorder) Add(route string, payload []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, Msg{Route: route, Payload: append([]byte(nil), payload...)})
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// Snapshot returns the messages so far.
func (r *Recorder) Snapshot() []Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Msg(nil), r.msgs...)
}

// On returns the messages on route.
func (r *Recorder) On(route string) []Msg {
	var out []Msg
	for _, m := range r.Snapshot() {
		if m.Route == route {
			out = append(out, m)
		}
	}
	return out
}

// Await waits up to d until cond holds for the messages; it fails the test
// with what otherwise.
func (r *Recorder) Await(t testing.TB, d time.Duration, what string, cond func([]Msg) bool) []Msg {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		msgs := r.Snapshot()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-r.more:
		case <-deadline.C:
			t.Fatalf("%s: not within %v (%d messages)", what, d, len(msgs))
			return nil
		}
	}
}

// Reply is a command reply as bus clients see it.
type Reply struct {
	ID     string `json:"id"`
	OK     bool   `json:"ok"`
	Status struct {
		Code uint32 `json:"code"`
		Name string `json:"name"`
	} `json:"status"`
	Error   *string           `json:"error"`
	Outputs []json.RawMessage `json:"outputs"`
	// Raw is the reply as received.
	Raw string `json:"-"`
}

// ErrorText returns the error, "" when there is none.
func (r Reply) ErrorText() string {
	if r.Error == nil {
		return ""
	}
	return *r.Error
}

// DecodeReply decodes a reply payload.
func DecodeReply(t testing.TB, b []byte) Reply {
	t.Helper()
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %s: %v", b, err)
	}
	r.Raw = string(b)
	return r
}

// Client is a bus client acting as a user of the bridge.
type Client interface {
	// Command sends payload on the command route and returns the reply:
	// a NATS request, or an MQTT publish on route answered on
	// route + "/result" (matched by the payload's id).
	Command(t testing.TB, route string, payload string) Reply
	// Watch records what arrives on filter (NATS subject or MQTT topic
	// filter, wildcards allowed) until test cleanup.
	Watch(t testing.TB, filter string) *Recorder
	// Sep is the route separator: "." or "/".
	Sep() string
}

// NATSClient is a NATS user of the bridge.
type NATSClient struct{ NC *nats.Conn }

// DialNATS connects a client that reconnects forever; it closes at test
// cleanup.
func DialNATS(t testing.TB, url string) *NATSClient {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatalf("nats connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return &NATSClient{NC: nc}
}

// Sep implements Client.
func (c *NATSClient) Sep() string { return "." }

// Command implements Client.
func (c *NATSClient) Command(t testing.TB, route, payload string) Reply {
	t.Helper()
	msg, err := c.NC.Request(route, []byte(payload), 10*time.Second)
	if err != nil {
		t.Fatalf("request %s %s: %v", route, payload, err)
	}
	return DecodeReply(t, msg.Data)
}

// Watch implements Client.
func (c *NATSClient) Watch(t testing.TB, filter string) *Recorder {
	t.Helper()
	rec := NewRecorder()
	sub, err := c.NC.Subscribe(filter, func(m *nats.Msg) { rec.Add(m.Subject, m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return rec
}

// MQTTClient is an MQTT user of the bridge.
type MQTTClient struct{ C mqtt.Client }

var clientIDs atomic.Int64

// DialMQTT connects a client (clean session, automatic reconnect); it
// disconnects at test cleanup.
func DialMQTT(t testing.TB, url string) *MQTTClient {
	t.Helper()
	return &MQTTClient{C: mqtttest.Dial(t, url, fmt.Sprintf("e2e-%d", clientIDs.Add(1)), false)}
}

// Sep implements Client.
func (c *MQTTClient) Sep() string { return "/" }

// Command implements Client: the reply is the result carrying the
// payload's "id" ("" for a payload without one).
func (c *MQTTClient) Command(t testing.TB, route, payload string) Reply {
	t.Helper()
	id := func(b []byte) string {
		var env struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(b, &env)
		return env.ID
	}
	want := id([]byte(payload))
	b, err := mqtttest.Command(WithTimeout(t, 10*time.Second), c.C, route, []byte(payload), func(r []byte) bool { return id(r) == want })
	if err != nil {
		t.Fatalf("command %s %s: %v", route, payload, err)
	}
	return DecodeReply(t, b)
}

// Watch implements Client. Retained messages are recorded too.
func (c *MQTTClient) Watch(t testing.TB, filter string) *Recorder {
	t.Helper()
	rec := NewRecorder()
	mqtttest.Wait(t, c.C.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) { rec.Add(m.Topic(), m.Payload()) }), "watch "+filter)
	t.Cleanup(func() { c.C.Unsubscribe(filter).WaitTimeout(time.Second) })
	return rec
}

// Route joins route levels with the client's separator.
func Route(c Client, parts ...string) string { return strings.Join(parts, c.Sep()) }

// WithTimeout returns a context ended after d or at test cleanup.
func WithTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Data is a JSON data message as consumers decode it.
type Data struct {
	Server string          `json:"server"`
	Node   string          `json:"node"`
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Value  json.RawMessage `json:"value"`
	Status struct {
		Code uint32 `json:"code"`
	} `json:"status"`
}

// DecodeData decodes a data message.
func DecodeData(t testing.TB, b []byte) Data {
	t.Helper()
	var d Data
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("data message %s: %v", b, err)
	}
	return d
}
