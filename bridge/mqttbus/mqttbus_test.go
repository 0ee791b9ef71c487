package mqttbus

import (
	"bytes"
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
	"github.com/rcbridge/rcbridge/bridge/mqttbus/mqtttest"
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
	client := mqtttest.Dial(t, b.URL(), ids.id(t, "requester"), false)
	return bustest.Harness{
		Sep:                "/",
		QoS:                qos,
		LosslessRestart:    qos > bridge.AtMostOnce,
		DropsCountedAtOnce: true,
		Open: func(t *testing.T, c bustest.Config) bridge.Bus {
			return openBus(t, Options{
				Brokers: []string{b.URL()}, ClientID: ids.id(t, "bridge"),
				MaxInFlight: c.MaxInFlight, CommandQueue: c.CommandQueue, Metrics: c.Metrics, Self: c.Self,
				MaxReconnectInterval: 500 * time.Millisecond,
			})
		},
		Watch: func(t *testing.T, prefix string) *bustest.Recorder {
			rec := bustest.NewRecorder()
			b.Subscribe(prefix+"/#", rec.Add)
			return rec
		},
		Stall: func(t *testing.T, prefix string) {
			block := make(chan struct{})
			c := mqtttest.Dial(t, b.URL(), ids.id(t, "stalled"), false)
			mqtttest.Wait(t, c.Subscribe(prefix+"/#", 1, func(mqtt.Client, mqtt.Message) { <-block }), "stalled subscribe")
			t.Cleanup(func() { close(block) })
		},
		Command: func(ctx context.Context, t *testing.T, route string, payload []byte) ([]byte, error) {
			return mqtttest.Command(ctx, client, route, payload, func(r []byte) bool {
				return bytes.HasSuffix(r, append([]byte("|"), payload...))
			})
		},
		Notify: func(t *testing.T, route string, payload []byte) {
			mqtttest.Wait(t, client.Publish(route, 1, false, payload), "notify")
		},
		RestartBroker: func(t *testing.T, whileDown func()) { b.Restart(whileDown) },
		ReadPresence: func(ctx context.Context, t *testing.T, p bridge.Presence) []byte {
			return mqtttest.Retained(ctx, t, b.URL(), p.Route)
		},
	}
}

func TestConformanceQoS0(t *testing.T) { bustest.Run(t, harness(t, bridge.AtMostOnce)) }
func TestConformanceQoS1(t *testing.T) { bustest.Run(t, harness(t, bridge.AtLeastOnce)) }
func TestConformanceQoS2(t *testing.T) { bustest.Run(t, harness(t, bridge.ExactlyOnce)) }
