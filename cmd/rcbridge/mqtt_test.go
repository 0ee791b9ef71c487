package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
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
