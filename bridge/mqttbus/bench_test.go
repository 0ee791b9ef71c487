package mqttbus

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/rcbridge/rcbridge/bridge"
)

// benchPayload is the size of a typical JSON data message.
var benchPayload = []byte(`{"server":"urn:plant:line1","node":"nsu=urn:plant;s=Line1.Speed","name":"speed","value":1450.5,"type":"Double","status":{"code":0,"name":"Good"},"sourceTimestamp":"2025-01-02T03:04:05.1234567Z"}`)

// BenchmarkMQTTQoS0 compares the adapter with a bare paho publish loop of
// the same QoS 0 messages into an embedded mochi broker, alternating one
// batch of each per iteration so that both see the same load. A batch
// ends when paho wrote its last message (the adapter: its confirmation).
func BenchmarkMQTTQoS0(b *testing.B) {
	benchMQTT(b, bridge.AtMostOnce)
}

// BenchmarkMQTTQoS1 is BenchmarkMQTTQoS0 at QoS 1: a batch ends with its
// last PUBACK.
func BenchmarkMQTTQoS1(b *testing.B) {
	benchMQTT(b, bridge.AtLeastOnce)
}

func benchMQTT(b *testing.B, qos bridge.QoS) {
	const per = 1000
	br := startBroker(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := New(ctx, Options{Brokers: []string{br.URL()}, ClientID: "bench-adapter", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bus.Close(ctx)
	}()
	bare := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("bench-bare").SetCleanSession(false))
	if tok := bare.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("bare client: %v", tok.Error())
	}
	defer bare.Disconnect(100)

	msgs := make([]bridge.Message, per)
	for i := range msgs {
		msgs[i] = bridge.Message{Route: fmt.Sprintf("bench/line1/n%d", i%100), Payload: benchPayload, QoS: qos}
	}
	var adapterTime, bareTime time.Duration
	done := make(chan error, 1)
	viaAdapter := func() {
		start := time.Now()
		if err := bus.Publish(context.Background(), msgs, func(err error) { done <- err }); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		adapterTime += time.Since(start)
	}
	viaPaho := func() {
		start := time.Now()
		var tok mqtt.Token
		for i := range msgs {
			tok = bare.Publish(msgs[i].Route, byte(qos), false, msgs[i].Payload)
		}
		// One connection: QoS 0 tokens complete in write order, PUBACKs
		// come back in publish order; the last token ends the batch.
		tok.Wait()
		if err := tok.Error(); err != nil {
			b.Fatal(err)
		}
		bareTime += time.Since(start)
	}
	b.ResetTimer()
	for i := range b.N {
		// Alternate who goes first: the broker may still be working on the
		// previous batch.
		if i%2 == 0 {
			viaAdapter()
			viaPaho()
		} else {
			viaPaho()
			viaAdapter()
		}
	}
	n := float64(b.N * per)
	b.ReportMetric(n/adapterTime.Seconds(), "adapter-msgs/s")
	b.ReportMetric(n/bareTime.Seconds(), "bare-msgs/s")
	b.ReportMetric(bareTime.Seconds()/adapterTime.Seconds(), "adapter/bare")
}
