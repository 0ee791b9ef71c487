package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// startMochi runs an embedded MQTT broker on a free loopback port.
func startMochi(t *testing.T) (*mochi.Server, string) {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, addr
}

// TestTailRequestMQTT runs tail and request against an MQTT broker.
func TestTailRequestMQTT(t *testing.T) {
	srv, addr := startMochi(t)
	env := []string{"RCBRIDGE_CONFIG=" + writeFile(t, t.TempDir(), "c.toml", fmt.Sprintf(`
[bus]
kind = "mqtt"
prefix = "plant"
[bus.mqtt]
brokers = ["tcp://%s"]
`, addr))}

	if err := srv.Publish("plant/status/line1", []byte(`{"state":"online"}`), true, 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	tailDone := make(chan int, 1)
	go func() { tailDone <- cli(ctx, []string{"tail"}, &stdout, &stderr, env) }()
	waitFor(t, "tail to subscribe", func() bool { return strings.Contains(stderr.String(), `listening on "plant/#"`) })
	waitFor(t, "the retained status", func() bool { return strings.Contains(stdout.String(), "plant/status/line1 (retained) ") })
	if err := srv.Publish("plant/line1/counter1", []byte(`{"value": 8}`), false, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the live message", func() bool { return strings.Contains(stdout.String(), ` plant/line1/counter1 {"value":8}`) })
	cancel()
	if code := <-tailDone; code != exitOK {
		t.Errorf("tail exit %d: %s", code, stderr.String())
	}

	// A command handler on the broker: answers on <route>/result, first
	// with someone else's id (which request must ignore).
	var wg sync.WaitGroup
	defer wg.Wait()
	err := srv.Subscribe("plant/line1/setpoint/set", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		var req struct {
			ID    string  `json:"id"`
			Value float64 `json:"value"`
		}
		_ = json.Unmarshal(pk.Payload, &req)
		wg.Go(func() {
			_ = srv.Publish("plant/line1/setpoint/set/result", []byte(`{"id":"someone-else","ok":true}`), false, 1)
			_ = srv.Publish("plant/line1/setpoint/set/result", fmt.Appendf(nil, `{"id":%q,"ok":%t}`, req.ID, req.Value <= 100), false, 1)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, context.Background(), env, "request", "plant/line1/setpoint/set", `{"id":"c-9","value":1}`)
	if code != exitOK || !strings.Contains(out, `plant/line1/setpoint/set {"id":"c-9","ok":true}`) {
		t.Errorf("request: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, context.Background(), env, "request", "plant/line1/setpoint/set", `{"value":101}`)
	if code != exitFailure || !strings.Contains(out, `"id":"rcbridge-request-`) || !strings.Contains(out, `"ok":false`) {
		t.Errorf("request without id, refused: exit %d, %q", code, out)
	}
	if code, _, errOut := runCLI(t, context.Background(), env, "request", "-timeout", "300ms", "plant/nobody/set", `{}`); code != exitFailure || !strings.Contains(errOut, "no result") {
		t.Errorf("request without an answer: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, context.Background(), env, "request", "plant/x/set", `[1]`); code != exitFailure || !strings.Contains(errOut, "JSON objects") {
		t.Errorf("request with an array: exit %d, %q", code, errOut)
	}
}

// TestDaemonMQTT runs the daemon with [bus] kind = "mqtt": a server's
// presence (retained) and values reach the broker, a write comes back.
func TestDaemonMQTT(t *testing.T) {
	broker, addr := startMochi(t)
	var mu sync.Mutex
	var got []string // "topic payload"
	err := broker.Subscribe("rcbridge/#", 2, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		mu.Lock()
		got = append(got, pk.TopicName+" "+string(pk.Payload))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := func(topic, want string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range got {
				if strings.HasPrefix(m, topic+" ") && strings.Contains(m, want) {
					return true
				}
			}
			return false
		}
	}
	dir := t.TempDir()
	toml := strings.Replace(testConfig(dir), `[bus]
kind = "embedded"`, fmt.Sprintf(`[bus]
kind = "mqtt"

[bus.mqtt]
brokers = ["tcp://%s"]
client_id = "rcbridge-test"`, addr), 1)
	toml = strings.Replace(toml, `[bus.embedded]`, `[bus.embedded] # unused`, 1)
	toml += `
[[map]]
servers = "urn:test:line1"
node = "nsu=urn:rcbridge:sim;s=Speed"
name = "speed"
writable = true
`
	d := startDaemon(t, toml)
	waitFor(t, "the bridge's own status", seen("rcbridge/status/rcbridge", `"state":"online"`))

	srv, err := rctest.NewServer(rctest.Options{ServerURI: "urn:test:line1", NamespaceURI: "urn:rcbridge:sim"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddVariable("Counter1", int32(7), false)
	speed := srv.AddVariable("Speed", 1500.0, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.Dial(ctx, d.addrs.Listener); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "line1 online", seen("rcbridge/status/line1", `"state":"online"`))
	waitFor(t, "counter1", seen("rcbridge/line1/counter1", `"value":7`))
	waitFor(t, "speed", seen("rcbridge/line1/speed", `"value":1500`))

	env := []string{"RCBRIDGE_CONFIG=" + writeFile(t, dir, "client.toml", toml)}
	code, out, errOut := runCLI(t, context.Background(), env, "request", "rcbridge/line1/speed/set", `{"id":"m-1","value":1234.5}`)
	if code != exitOK || !strings.Contains(out, `"id":"m-1","ok":true`) {
		t.Fatalf("request over MQTT: exit %d, %q %q", code, out, errOut)
	}
	waitFor(t, "the new speed", seen("rcbridge/line1/speed", `"value":1234.5`))
	if dvs := srv.NS.Node(speed).Value(); dvs.Value.Value() != 1234.5 {
		t.Errorf("server value %v", dvs.Value.Value())
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "line1 offline at shutdown", seen("rcbridge/status/line1", `"state":"offline"`))
	waitFor(t, "the bridge offline at shutdown", seen("rcbridge/status/rcbridge", `"state":"offline"`))
}
