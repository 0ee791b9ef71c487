package bridge_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
)

// benchItems is the number of data changes per NotificationMessage in the
// benchmarks.
const benchItems = 100

// benchClient is a bridge.Client that only delivers notifications and
// counts acknowledgements.
type benchClient struct {
	*scriptClient
	acked atomic.Int64
}

// benchTable maps n variables of one server.
func benchTable(b *testing.B, syntax mapping.Syntax, n int) *mapping.Table {
	b.Helper()
	rows := make([]mapping.Row, n)
	for i := range rows {
		ref, err := mapping.ParseNodeRef("nsu=" + testNS + ";s=Tag" + strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		rows[i] = mapping.Row{Servers: []string{"urn:s1"}, Node: ref}
	}
	table, err := mapping.New(mapping.Config{Syntax: syntax, Prefix: "bench", Servers: []mapping.Server{{URI: "urn:s1", Key: "s1"}}, Rows: rows})
	if err != nil {
		b.Fatal(err)
	}
	return table
}

// benchChanges returns one NotificationMessage's changes: a Double with a
// source and a server timestamp for each of n items.
func benchChanges(n int) []bridge.DataChange {
	now := time.Now()
	out := make([]bridge.DataChange, n)
	for i := range out {
		out[i] = bridge.DataChange{Handle: uint32(i), Value: &ua.DataValue{
			EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:        ua.MustVariant(float64(i) + 0.5), SourceTimestamp: now, ServerTimestamp: now,
		}}
	}
	return out
}

// BenchmarkPipeline measures data changes per second from a Client's
// notifications to confirmed bus messages, through the bridge ("bridge":
// payload encoding, batching, confirmation, acknowledgement) and, as the
// baseline, the same messages encoded and published by a bare loop on the
// same adapter ("bare"), side by side in one run. Each NotificationMessage
// carries 100 changes of Doubles with both timestamps, as JSON documents.
func BenchmarkPipeline(b *testing.B) {
	for _, bus := range []struct {
		name   string
		syntax mapping.Syntax
		open   func(b *testing.B) bridge.Bus
	}{
		{"nats", mapping.NATS, func(b *testing.B) bridge.Bus {
			return e2e.OpenNATSBus(b, e2e.StartNATS(b, false).URL(), false, "bench")
		}},
		{"jetstream", mapping.NATS, func(b *testing.B) bridge.Bus {
			return e2e.OpenNATSBus(b, e2e.StartNATS(b, true).URL(), true, "bench")
		}},
		{"mqtt-qos0", mapping.MQTT, func(b *testing.B) bridge.Bus { return e2e.OpenMQTTBus(b, e2e.StartMochi(b).URL()) }},
	} {
		b.Run(bus.name+"/bridge", func(b *testing.B) { benchBridge(b, bus.open(b), benchTable(b, bus.syntax, benchItems)) })
		b.Run(bus.name+"/bare", func(b *testing.B) { benchBare(b, bus.open(b), benchTable(b, bus.syntax, benchItems)) })
	}
}

// runBench runs a bridge on bus with a benchClient until the benchmark
// ends.
func runBench(b *testing.B, bus bridge.Bus, table *mapping.Table) *benchClient {
	client := &benchClient{scriptClient: newScriptClient()}
	clients := make(chan bridge.Client, 1)
	clients <- client
	br, err := bridge.New(bridge.Config{Table: table, Source: scriptSource{clients}, Publisher: bus, Logger: e2e.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = br.Run(ctx) })
	b.Cleanup(func() { cancel(); wg.Wait() })
	if err := br.AwaitState(e2e.WithTimeout(b, 10*time.Second), "urn:s1", bridge.Online); err != nil {
		b.Fatal(err)
	}
	return client
}

func benchBridge(b *testing.B, bus bridge.Bus, table *mapping.Table) {
	client := runBench(b, bus, table)
	changes := benchChanges(benchItems)
	ack := func() { client.acked.Add(1) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		client.notes <- bridge.Notification{Subscription: 1, Sequence: uint32(i + 1), Changes: changes, Ack: ack}
	}
	for client.acked.Load() < int64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchItems)/b.Elapsed().Seconds(), "changes/s")
}

func benchBare(b *testing.B, bus bridge.Bus, table *mapping.Table) {
	items := table.For("urn:s1")
	changes := benchChanges(benchItems)
	var confirmed atomic.Int64
	confirm := func(err error) {
		if err != nil {
			b.Error(err)
		}
		confirmed.Add(1)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		buf := make([]byte, 0, len(changes)*256)
		ends := make([]int, len(changes))
		for j, ch := range changes {
			buf = items[ch.Handle].AppendPayload(buf, ch.Value)
			ends[j] = len(buf)
		}
		batch := make([]bridge.Message, len(changes))
		start := 0
		for j, ch := range changes {
			it := items[ch.Handle]
			batch[j] = bridge.Message{Route: it.Route, Payload: buf[start:ends[j]:ends[j]], QoS: bridge.QoS(it.QoS),
				ID: bridge.MsgID{Server: "s1", Subscription: 1, Sequence: uint32(i + 1), Index: uint32(j)}}
			start = ends[j]
		}
		if err := bus.Publish(ctx, batch, confirm); err != nil {
			b.Fatal(err)
		}
	}
	for confirmed.Load() < int64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchItems)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkLatency measures the latency the bridge adds to one
// NotificationMessage of 1,000 changes: from handing it to the bridge to its
// acknowledgement, after core NATS confirmed all 1,000 messages with a flush
// round trip (nats-server in the same process). Messages are sent one at a
// time; p50 and p99 are reported.
func BenchmarkLatency(b *testing.B) {
	const items = 1000
	bus := e2e.OpenNATSBus(b, e2e.StartNATS(b, false).URL(), false, "bench")
	client := runBench(b, bus, benchTable(b, mapping.NATS, items))
	changes := benchChanges(items)
	done := make(chan struct{}, 1)
	ack := func() { done <- struct{}{} }
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		client.notes <- bridge.Notification{Subscription: 1, Sequence: uint32(i + 1), Changes: changes, Ack: ack}
		<-done
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
