package rcsource_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// benchNATSEnv asks a load process (see TestMain) to run a nats-server too
// and print its URL as "nats <url>" before serving.
const benchNATSEnv = "RCSOURCE_BENCH_NATS"

// BenchmarkEndToEnd measures the bridge's CPU time per data change from
// OPC UA servers to confirmed messages on core NATS, against gopcua's
// decode floor, side by side in one run, for NotificationMessages of 100
// and of 1,000 UInt32 changes from 1 and from 4 servers:
//
//   - cpu-ns/change: rctest load servers in a separate process
//     reverse-connect and stream pre-encoded PublishResponses; rc's
//     publish engine, rcsource, the bridge (JSON payloads, batches,
//     acknowledgement after the flush round trip) and natsbus deliver them
//     to a nats-server that runs in the load process too, so neither the
//     servers' nor the broker's CPU time is counted. The CPU time of this
//     process (user and system, all threads) per change confirmed.
//   - floor-cpu-ns/change: this process decoding as many
//     PublishResponses of the same size with gopcua, measured the same way,
//     in rounds that alternate with the bridge's (rctest.CompareWithFloor).
//
// cpu/floor is their ratio (issue 6's target: ≤ 1.3), changes/s the
// throughput into NATS (≥ 250k with several sessions), ns/op the wall time
// per change.
//
//	go test -run '^$' -bench EndToEnd -benchmem ./bridge/rcsource
func BenchmarkEndToEnd(b *testing.B) {
	for _, per := range []int{100, 1000} {
		for _, sessions := range []int{1, 4} {
			b.Run(fmt.Sprintf("changes=%d/sessions=%d", per, sessions), func(b *testing.B) { benchEndToEnd(b, per, sessions) })
		}
	}
}

func benchEndToEnd(b *testing.B, per, sessions int) {
	const items = 100
	proc := rctest.StartLoadProcess(b, rctest.LoadOptions{ChangesPerMessage: per}, benchNATSEnv+"=1")
	line, err := proc.ReadLine()
	if err != nil {
		b.Fatal(err)
	}
	url, ok := strings.CutPrefix(line, "nats ")
	if !ok {
		b.Fatalf("load process: want the nats-server URL, got %q", line)
	}
	bus := e2e.OpenNATSBus(b, url, false, prefix)
	servers := make([]mapping.Server, sessions)
	for i := range servers {
		servers[i] = mapping.Server{URI: "urn:load:" + strconv.Itoa(i), Key: "load" + strconv.Itoa(i)}
	}
	rows := make([]mapping.Row, items)
	for i := range rows {
		ref, err := mapping.ParseNodeRef("ns=1;s=Tag" + strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		rows[i] = mapping.Row{Servers: []string{"urn:load:*"}, Node: ref}
	}
	var confirmed atomic.Int64
	br := e2e.StartBridge(b, e2e.BridgeConfig{Servers: servers, Syntax: mapping.NATS, Prefix: prefix, Rows: rows, Bus: bus,
		Tune: func(c *bridge.Config) {
			c.Commands = nil
			c.Metrics.Server = func(string) bridge.ServerMetrics {
				return bridge.ServerMetrics{Confirmed: func(n uint64) { confirmed.Add(int64(n)) }}
			}
			for _, s := range servers {
				c.Servers = append(c.Servers, bridge.ServerConfig{URI: s.URI, PublishingInterval: 10 * time.Millisecond})
			}
		}})
	for _, s := range servers {
		if err := proc.Dial(s.URI, br.Addr()); err != nil {
			b.Fatal(err)
		}
		br.Await(s.URI, bridge.Online)
	}
	for deadline := time.Now().Add(30 * time.Second); confirmed.Load() < int64(max(10_000, 10*per)); { // warm up
		if time.Now().After(deadline) {
			b.Fatalf("%d changes confirmed in 30 s", confirmed.Load())
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	rctest.CompareWithFloor(b, proc, per, confirmed.Load)
}
