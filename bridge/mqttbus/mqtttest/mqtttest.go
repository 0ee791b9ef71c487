// Package mqtttest holds the test side of MQTT conversations with a real
// broker, in the spirit of httptest: a reconnecting paho client, a command
// requester, a reader of retained messages. The adapter's tests and the
// integration tests against mosquitto share it.
package mqtttest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Dial connects a paho client that reconnects by itself; persistent
// selects a persistent session (clean session off). It is disconnected at
// test cleanup.
func Dial(tb testing.TB, url, id string, persistent bool) mqtt.Client {
	tb.Helper()
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(!persistent).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(opts)
	if !c.Connect().WaitTimeout(10*time.Second) || !c.IsConnectionOpen() {
		tb.Fatalf("test client %s: no connection to %s", id, url)
	}
	// A quiesce past the connect timeout: Disconnect returns when the
	// DISCONNECT is written, or once a connection attempt in progress has
	// ended, so no paho goroutine outlives the test.
	tb.Cleanup(func() { c.Disconnect(6000) })
	return c
}

// Wait fails the test unless tok completes without error within 10 s.
func Wait(tb testing.TB, tok mqtt.Token, what string) {
	tb.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		tb.Fatalf("%s: timeout", what)
	}
	if err := tok.Error(); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// Command publishes payload on the command topic route with c (waiting
// for c to be connected, as after a broker restart) and returns the first
// message on `<route>/result` that match accepts (nil accepts any): MQTT
// has no request/reply, a client recognises its result by the correlation
// id in it.
func Command(ctx context.Context, c mqtt.Client, route string, payload []byte, match func([]byte) bool) ([]byte, error) {
	for !c.IsConnectionOpen() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("requester not connected: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	got := make(chan []byte, 1)
	tok := c.Subscribe(route+"/result", 1, func(_ mqtt.Client, m mqtt.Message) {
		if match != nil && !match(m.Payload()) {
			return
		}
		select {
		case got <- m.Payload():
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe result topic: %v", tok.Error())
	}
	defer func() { c.Unsubscribe(route + "/result").WaitTimeout(5 * time.Second) }()
	if p := c.Publish(route, 1, false, payload); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
		return nil, fmt.Errorf("publish command: %v", p.Error())
	}
	select {
	case r := <-got:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Retained reads the retained message of topic with a fresh client, or
// returns nil when the broker sends none within 300 ms.
func Retained(ctx context.Context, tb testing.TB, url, topic string) []byte {
	tb.Helper()
	c := Dial(tb, url, "reader-"+strconv.FormatInt(time.Now().UnixNano(), 36), false)
	defer c.Disconnect(6000)
	got := make(chan []byte, 1)
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if m.Retained() {
			select {
			case got <- m.Payload():
			default:
			}
		}
	})
	if !tok.WaitTimeout(5 * time.Second) {
		return nil
	}
	select {
	case r := <-got:
		return r
	case <-time.After(300 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return nil
	}
}
