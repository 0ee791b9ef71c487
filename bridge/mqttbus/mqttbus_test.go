package mqttbus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger writes the adapter's warnings into the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// clientSeq makes test client ids unique.
type clientSeq struct{ n atomic.Int64 }

func (c *clientSeq) id(t testing.TB, role string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	return fmt.Sprintf("%s-%s-%d", role, name, c.n.Add(1))
}

// dialClient connects a plain paho client (clean session, reconnecting)
// for the test side: requests, stalled subscribers, presence reads.
func dialClient(t testing.TB, url, id string, configure func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetConnectTimeout(5 * time.Second)
	if configure != nil {
		configure(opts)
	}
	c := mqtt.NewClient(opts)
	if !c.Connect().WaitTimeout(10*time.Second) || !c.IsConnectionOpen() {
		t.Fatalf("test client %s: no connection to %s", id, url)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func wait(t testing.TB, tok mqtt.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("%s: timeout", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// openBus opens an adapter with test defaults and closes it at cleanup.
func openBus(t *testing.T, o Options) *Bus {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bus.Close(ctx)
	})
	return bus
}

// harness is the conformance harness against an embedded mochi broker with
// data messages at qos.
func harness(t *testing.T, qos bridge.QoS) bustest.Harness {
	b := startBroker(t)
	var ids clientSeq
	client := dialClient(t, b.url(), ids.id(t, "requester"), nil)
	return bustest.Harness{
		Sep:             "/",
		QoS:             qos,
		LosslessRestart: qos > bridge.AtMostOnce,
		Open: func(t *testing.T, c bustest.Config) bridge.Bus {
			return openBus(t, Options{
				Brokers: []string{b.url()}, ClientID: ids.id(t, "bridge"),
				MaxInFlight: c.MaxInFlight, CommandQueue: c.CommandQueue, Metrics: c.Metrics, Self: c.Self,
				MaxReconnectInterval: 500 * time.Millisecond,
			})
		},
		Watch: func(t *testing.T, prefix string) *bustest.Recorder {
			rec := bustest.NewRecorder()
			b.subscribe(prefix+"/#", rec.Add)
			return rec
		},
		Stall: func(t *testing.T, prefix string) {
			block := make(chan struct{})
			c := dialClient(t, b.url(), ids.id(t, "stalled"), nil)
			wait(t, c.Subscribe(prefix+"/#", 1, func(mqtt.Client, mqtt.Message) { <-block }), "stalled subscribe")
			t.Cleanup(func() { close(block) })
		},
		Command: func(ctx context.Context, t *testing.T, route string, payload []byte) ([]byte, error) {
			got := make(chan []byte, 1)
			tok := client.Subscribe(route+"/result", 1, func(_ mqtt.Client, m mqtt.Message) {
				select {
				case got <- m.Payload():
				default:
				}
			})
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				return nil, fmt.Errorf("subscribe result topic: %v", tok.Error())
			}
			defer func() { client.Unsubscribe(route + "/result").WaitTimeout(5 * time.Second) }()
			if p := client.Publish(route, 1, false, payload); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
				return nil, fmt.Errorf("publish command: %v", p.Error())
			}
			select {
			case r := <-got:
				return r, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		Notify: func(t *testing.T, route string, payload []byte) {
			wait(t, client.Publish(route, 1, false, payload), "notify")
		},
		RestartBroker: func(t *testing.T, whileDown func()) { b.restart(whileDown) },
		ReadPresence: func(ctx context.Context, t *testing.T, p bridge.Presence) []byte {
			c := dialClient(t, b.url(), ids.id(t, "reader"), nil)
			defer c.Disconnect(0)
			got := make(chan []byte, 1)
			tok := c.Subscribe(p.Route, 1, func(_ mqtt.Client, m mqtt.Message) {
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
		},
	}
}

func TestConformanceQoS0(t *testing.T) { bustest.Run(t, harness(t, bridge.AtMostOnce)) }
func TestConformanceQoS1(t *testing.T) { bustest.Run(t, harness(t, bridge.AtLeastOnce)) }
func TestConformanceQoS2(t *testing.T) { bustest.Run(t, harness(t, bridge.ExactlyOnce)) }
