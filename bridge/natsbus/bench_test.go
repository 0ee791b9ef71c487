package natsbus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rcbridge/rcbridge/bridge"
)

// benchPayload is the size of a typical JSON data message.
var benchPayload = []byte(`{"server":"urn:plant:line1","node":"nsu=urn:plant;s=Line1.Speed","name":"speed","value":1450.5,"type":"Double","status":{"code":0,"name":"Good"},"sourceTimestamp":"2025-01-02T03:04:05.1234567Z"}`)

// benchBatch builds n messages over 100 subjects with distinct MsgIDs.
func benchBatch(server string, seq uint32, n int) []bridge.Message {
	msgs := make([]bridge.Message, n)
	for i := range msgs {
		msgs[i] = bridge.Message{
			Route:   fmt.Sprintf("bench.%s.n%d", server, i%100),
			Payload: benchPayload,
			ID:      bridge.MsgID{Server: server, Subscription: 1, Sequence: seq, Index: uint32(i)},
		}
	}
	return msgs
}

func benchBus(b *testing.B, url string, js *JetStreamOptions) *Bus {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := New(ctx, Options{URLs: []string{url}, JetStream: js, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bus.Close(ctx)
	})
	return bus
}

// BenchmarkCorePublishConfirm: several sessions publish batches of 100
// messages into core NATS without waiting, each batch confirmed by the
// shared flush round trip. "bare" is nats.go publishing the same messages
// with one flush at the end: the ceiling. One op is one message.
func BenchmarkCorePublishConfirm(b *testing.B) {
	const sessions, per = 8, 100
	br := startBroker(b, false)
	b.Run("adapter", func(b *testing.B) {
		bus := benchBus(b, br.url(), nil)
		batches := make([][]bridge.Message, sessions)
		for s := range batches {
			batches[s] = benchBatch(fmt.Sprintf("s%d", s), 1, per)
		}
		b.ResetTimer()
		var wg, confirmed sync.WaitGroup
		n := b.N/(per*sessions) + 1 // batches per session
		confirmed.Add(sessions * n)
		for s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					if err := bus.Publish(context.Background(), batches[s], func(err error) {
						if err != nil {
							b.Error(err)
						}
						confirmed.Done()
					}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		confirmed.Wait()
		b.ReportMetric(float64(sessions*n*per)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("bare", func(b *testing.B) {
		nc, err := nats.Connect(br.url())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		msgs := benchBatch("bare", 1, per)
		b.ResetTimer()
		n := b.N/(per*sessions) + 1
		var wg sync.WaitGroup
		for range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					for i := range msgs {
						_ = nc.Publish(msgs[i].Route, msgs[i].Payload)
					}
				}
			}()
		}
		wg.Wait()
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(sessions*n*per)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkJetStream compares the adapter with a bare nats.go async
// JetStream publish loop of the same messages (same subjects, payloads
// and Nats-Msg-Id headers), alternating one batch of each per iteration so
// that both see the same load. Each batch waits for all its PubAcks.
func BenchmarkJetStream(b *testing.B) {
	const per = 1000
	br := startBroker(b, true)
	bus := benchBus(b, br.url(), &JetStreamOptions{Stream: "BENCH", Subjects: []string{"bench.>"}})
	nc, err := nats.Connect(br.url())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	var adapter, bare time.Duration
	done := make(chan error, 1)
	b.ResetTimer()
	for i := range b.N {
		msgs := benchBatch("adapter", uint32(i), per)
		start := time.Now()
		if err := bus.Publish(context.Background(), msgs, func(err error) { done <- err }); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		adapter += time.Since(start)

		raw := benchBatch("bare", uint32(i), per)
		start = time.Now()
		for k := range raw {
			m := &nats.Msg{Subject: raw[k].Route, Data: raw[k].Payload,
				Header: nats.Header{jetstream.MsgIDHeader: []string{raw[k].ID.String()}}}
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatal("bare JetStream publishes not acknowledged")
		}
		bare += time.Since(start)
	}
	msgs := float64(b.N * per)
	b.ReportMetric(msgs/adapter.Seconds(), "adapter-msgs/s")
	b.ReportMetric(msgs/bare.Seconds(), "bare-msgs/s")
	b.ReportMetric(bare.Seconds()/adapter.Seconds(), "adapter/bare")
}
