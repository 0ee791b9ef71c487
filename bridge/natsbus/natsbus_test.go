package natsbus

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testStream = "BT"

// testLogger writes the adapter's warnings into the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// dial connects a plain client (watchers, requesters) that reconnects
// forever.
func dial(t testing.TB, b *broker) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(b.url(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.Timeout(10*time.Second), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("client connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// harness returns the conformance harness for core NATS or JetStream.
func harness(t *testing.T, useJS bool) bustest.Harness {
	b := startBroker(t, useJS)
	var jsOpts *JetStreamOptions
	if useJS {
		jsOpts = &JetStreamOptions{Stream: testStream, Subjects: []string{"bt.>"}}
		// The stream exists before the first watcher subscribes to it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js, err := jetstream.New(dial(t, b))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: jsOpts.Subjects, Duplicates: time.Minute}); err != nil {
			t.Fatalf("create stream: %v", err)
		}
	}
	client := dial(t, b) // requests, notifications and presence reads
	h := bustest.Harness{
		Sep:             ".",
		LosslessRestart: useJS,
		OrderedRestart:  useJS,
		Open: func(t *testing.T, c bustest.Config) bridge.Bus {
			return newBus(t, Options{
				URLs: []string{b.url()}, Name: t.Name(),
				MaxInFlight: c.MaxInFlight, CommandQueue: c.CommandQueue, Metrics: c.Metrics, Self: c.Self,
				JetStream: jsOpts, ReconnectWait: 20 * time.Millisecond,
			})
		},
		Watch: func(t *testing.T, prefix string) *bustest.Recorder {
			rec := bustest.NewRecorder()
			nc := dial(t, b)
			if !useJS {
				if _, err := nc.Subscribe(prefix+".>", func(m *nats.Msg) { rec.Add(m.Subject, m.Data) }); err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				return rec
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			cons, err := js.OrderedConsumer(ctx, testStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{prefix + ".>"}})
			if err != nil {
				t.Fatalf("ordered consumer: %v", err)
			}
			cc, err := cons.Consume(func(m jetstream.Msg) { rec.Add(m.Subject(), m.Data()) })
			if err != nil {
				t.Fatalf("consume: %v", err)
			}
			t.Cleanup(cc.Stop)
			return rec
		},
		Stall: func(t *testing.T, prefix string) {
			nc := dial(t, b)
			block := make(chan struct{})
			sub, err := nc.Subscribe(prefix+".>", func(*nats.Msg) { <-block })
			if err != nil {
				t.Fatal(err)
			}
			_ = sub.SetPendingLimits(100, 1<<20)
			t.Cleanup(func() { close(block) })
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		},
		Command: func(ctx context.Context, t *testing.T, route string, payload []byte) ([]byte, error) {
			m, err := client.RequestWithContext(ctx, route, payload)
			if err != nil {
				return nil, err
			}
			return m.Data, nil
		},
		Notify: func(t *testing.T, route string, payload []byte) {
			if err := client.Publish(route, payload); err != nil {
				t.Fatal(err)
			}
			if err := client.Flush(); err != nil {
				t.Fatal(err)
			}
		},
		RestartBroker: func(t *testing.T, whileDown func()) { b.restart(whileDown) },
	}
	if useJS {
		h.ReadPresence = func(ctx context.Context, t *testing.T, p bridge.Presence) []byte {
			js, err := jetstream.New(client)
			if err != nil {
				t.Fatal(err)
			}
			kv, err := js.KeyValue(ctx, DefaultPresenceBucket)
			if err != nil {
				return nil
			}
			e, err := kv.Get(ctx, p.Key)
			if errors.Is(err, jetstream.ErrKeyNotFound) || err != nil {
				return nil
			}
			return e.Value()
		}
	}
	return h
}

func TestConformanceCore(t *testing.T) { bustest.Run(t, harness(t, false)) }

func TestConformanceJetStream(t *testing.T) { bustest.Run(t, harness(t, true)) }
