package mqttbus

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/hooks/auth"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/testpki"
	"github.com/rcbridge/rcbridge/bridge/mqttbus/mqtttest"
)

// publishWait publishes one batch and returns its confirmation.
func publishWait(t *testing.T, bus bridge.Publisher, msgs ...bridge.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	if err := bus.Publish(ctx, msgs, func(err error) { done <- err }); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatal("batch not confirmed within 20s")
		return nil
	}
}

// retained reads the retained message of topic with a fresh client.
func retained(t *testing.T, url, topic string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return mqtttest.Retained(ctx, t, url, topic)
}

func awaitRetainedState(t *testing.T, url, topic string, want bridge.PresenceState) bridge.Presence {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var p bridge.Presence
		if b := retained(t, url, topic); b != nil {
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatalf("retained %q: %v", b, err)
			}
			if p.State == want {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("retained state on %q never became %s (last %+v)", topic, want, p)
		}
	}
}

// TestLastWill cuts the network under the adapter: the broker publishes
// the bridge's last will (offline), and the adapter announces itself
// online again after it reconnected.
func TestLastWill(t *testing.T) {
	b := startBroker(t)
	p := startProxy(t, strings.TrimPrefix(b.URL(), "tcp://"))
	self := &bridge.Presence{Route: "rcb/status/_bridge", Key: "_bridge", Server: "bridge-a"}
	states := make(chan bridge.Presence, 16)
	b.Subscribe(self.Route, func(_ string, payload []byte) {
		var p bridge.Presence
		if err := json.Unmarshal(payload, &p); err != nil {
			t.Errorf("status payload %q: %v", payload, err)
		}
		states <- p
	})
	next := func(want bridge.PresenceState) bridge.Presence {
		t.Helper()
		for {
			select {
			case p := <-states:
				if p.State == want {
					return p
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("status never became %s", want)
			}
		}
	}
	var reconnects atomic.Uint64
	bus := openBus(t, Options{Brokers: []string{p.url()}, ClientID: "will-test", Self: self, KeepAlive: 2 * time.Second,
		MaxReconnectInterval: 200 * time.Millisecond, Metrics: bridge.BusMetrics{Reconnects: func(n uint64) { reconnects.Add(n) }}})
	first := next(bridge.Online)
	if first.Server != "bridge-a" || first.Since.IsZero() {
		t.Errorf("online status %+v", first)
	}
	p.cut()
	if will := next(bridge.Offline); !will.Since.IsZero() {
		t.Errorf("last will carries a time %v it cannot know", will.Since)
	}
	again := next(bridge.Online)
	if !again.Since.After(first.Since) {
		t.Errorf("online again since %v, not after the first %v", again.Since, first.Since)
	}
	if got := awaitRetainedState(t, b.URL(), self.Route, bridge.Online); !got.Since.Equal(again.Since) {
		t.Errorf("retained status %+v, want the latest online", got)
	}
	if reconnects.Load() == 0 {
		t.Error("Reconnects counter stayed 0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if p := next(bridge.Offline); p.Since.IsZero() {
		t.Errorf("offline on Close without a time: %+v", p)
	}
	awaitRetainedState(t, b.URL(), self.Route, bridge.Offline)
}

// TestMixedQoSAndRetain publishes one batch with every QoS and a retained
// message, and checks what subscribers see.
func TestMixedQoSAndRetain(t *testing.T) {
	b := startBroker(t)
	type seen struct {
		topic string
		qos   byte
	}
	got := make(chan seen, 10)
	sub := mqtttest.Dial(t, b.URL(), "mixed-sub", false)
	mqtttest.Wait(t, sub.Subscribe("mix/#", 2, func(_ mqtt.Client, m mqtt.Message) { got <- seen{m.Topic(), m.Qos()} }), "subscribe")
	bus := openBus(t, Options{Brokers: []string{b.URL()}, ClientID: "mixed"})
	err := publishWait(t, bus,
		bridge.Message{Route: "mix/q0", Payload: []byte("0"), QoS: bridge.AtMostOnce},
		bridge.Message{Route: "mix/q1", Payload: []byte("1"), QoS: bridge.AtLeastOnce},
		bridge.Message{Route: "mix/q2", Payload: []byte("2"), QoS: bridge.ExactlyOnce},
		bridge.Message{Route: "mix/kept", Payload: []byte("last"), QoS: bridge.AtLeastOnce, Retain: true},
	)
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	want := map[string]byte{"mix/q0": 0, "mix/q1": 1, "mix/q2": 2, "mix/kept": 1}
	for range want {
		select {
		case s := <-got:
			if q, ok := want[s.topic]; !ok || q != s.qos {
				t.Errorf("received %s at QoS %d", s.topic, s.qos)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not every message received")
		}
	}
	if r := retained(t, b.URL(), "mix/kept"); string(r) != "last" {
		t.Errorf("retained message %q, want last", r)
	}
	if r := retained(t, b.URL(), "mix/q1"); r != nil {
		t.Errorf("mix/q1 retained %q although not asked", r)
	}
}

// TestRetainedCommandIgnored: a command left retained on a /set topic must
// not be carried out when the adapter subscribes.
func TestRetainedCommandIgnored(t *testing.T) {
	b := startBroker(t)
	// Unique names: nothing of an earlier run (-count) can reach this one.
	uniq := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "cmd/" + uniq + "/set"
	c := mqtttest.Dial(t, b.URL(), "stale-commander-"+uniq, false)
	mqtttest.Wait(t, c.Publish(topic, 1, true, []byte(`{"id":"old","value":true}`)), "retained command")
	// mochi acknowledges a PUBLISH before it has stored and fanned it out;
	// it handles one client's packets in order, so the acknowledgement of
	// a second one means the first is done. Otherwise the adapter could
	// legitimately receive the command live, not retained.
	mqtttest.Wait(t, c.Publish("cmd/"+uniq+"/marker", 1, false, []byte("m")), "marker")
	if retained(t, b.URL(), topic) == nil {
		t.Fatal("command not retained by the broker")
	}
	var dropped atomic.Uint64
	bus := openBus(t, Options{Brokers: []string{b.URL()}, ClientID: "retained-cmd-" + uniq,
		Metrics: bridge.BusMetrics{CommandsDropped: func(n uint64) { dropped.Add(n) }}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := make(chan string, 2)
	if _, err := bus.Subscribe(ctx, []string{topic}, func(c bridge.Command) { calls <- string(c.Payload) }); err != nil {
		t.Fatal(err)
	}
	mqtttest.Wait(t, c.Publish(topic, 1, false, []byte("fresh")), "fresh command")
	select {
	case p := <-calls:
		if p != "fresh" {
			t.Fatalf("handler got %q, want only the fresh command", p)
		}
	case <-ctx.Done():
		t.Fatal("fresh command not delivered")
	}
	// The broker sends the retained copy after the SUBACK, possibly after
	// the fresh command; each copy is refused and counted.
	deadline := time.Now().Add(10 * time.Second)
	for dropped.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("CommandsDropped = 0: the retained command was not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case p := <-calls:
		t.Errorf("handler got %q after the fresh command", p)
	default:
	}
}

// TestAuthentication: username/password and TLS with a client certificate.
func TestAuthentication(t *testing.T) {
	ledger := &auth.Ledger{Auth: auth.AuthRules{{Username: "bridge", Password: "pw-1", Allow: true}}}
	t.Run("username and password", func(t *testing.T) {
		b := startBrokerWith(t, nil, ledger)
		bus := openBus(t, Options{Brokers: []string{b.URL()}, ClientID: "auth-ok", Username: "bridge", Password: "pw-1"})
		if err := publishWait(t, bus, bridge.Message{Route: "a/b", Payload: []byte("1"), QoS: 1}); err != nil {
			t.Error(err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		b := startBrokerWith(t, nil, ledger)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		_, err := New(ctx, Options{Brokers: []string{b.URL()}, ClientID: "auth-bad", Username: "bridge", Password: "wrong-pw", Logger: testLogger(t)})
		if err == nil {
			t.Fatal("New with a wrong password succeeded")
		}
		t.Logf("error: %v", err)
		if !strings.Contains(strings.ToLower(err.Error()), "not authori") || strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("error %q should name the refusal and not the password", err)
		}
	})
	t.Run("tls with client certificate", func(t *testing.T) {
		pki := testpki.New(t)
		b := startBrokerWith(t, pki.ServerConfig(t), nil)
		bus := openBus(t, Options{Brokers: []string{b.URL()}, ClientID: "tls-ok",
			TLSCAFile: pki.CAFile, TLSCertFile: pki.ClientCertFile, TLSKeyFile: pki.ClientKeyFile})
		if err := publishWait(t, bus, bridge.Message{Route: "a/b", Payload: []byte("1"), QoS: 1}); err != nil {
			t.Error(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		if _, err := New(ctx, Options{Brokers: []string{b.URL()}, ClientID: "tls-nocert", TLSCAFile: pki.CAFile, Logger: testLogger(t)}); err == nil {
			t.Error("New without the required client certificate succeeded")
		}
	})
}

// TestLargeQoS2BatchStaysUnderBrokerLimit sends one QoS 2 batch larger than
// the broker's receive maximum: the adapter keeps its QoS 2 messages in
// flight under MaxInFlight, so the broker never drops the connection.
func TestLargeQoS2BatchStaysUnderBrokerLimit(t *testing.T) {
	b := startBroker(t)
	var reconnects atomic.Uint64
	bus := openBus(t, Options{Brokers: []string{b.URL()}, ClientID: "big-q2",
		Metrics: bridge.BusMetrics{Reconnects: func(n uint64) { reconnects.Add(n) }}})
	batch := make([]bridge.Message, 3000)
	for i := range batch {
		batch[i] = bridge.Message{Route: "big/x", Payload: []byte("v"), QoS: bridge.ExactlyOnce}
	}
	if err := publishWait(t, bus, batch...); err != nil {
		t.Fatal(err)
	}
	if n := reconnects.Load(); n != 0 {
		t.Errorf("%d reconnects: the broker dropped the connection", n)
	}
}
