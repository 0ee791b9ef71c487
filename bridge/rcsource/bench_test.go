package rcsource_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/mapping"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// BenchmarkEndToEnd measures data changes per second from OPC UA servers
// to confirmed messages on core NATS, through the whole bridge: reverse
// connections from rctest load servers (pre-encoded PublishResponses, 100
// uint32 changes each), rc's publish engine, rcsource, the bridge
// (JSON payloads, batches, acknowledgement after the flush round trip) and
// natsbus, with nats-server in the same process. ns/op is per change.
//
//	go test -run '^$' -bench EndToEnd -benchmem ./bridge/rcsource
func BenchmarkEndToEnd(b *testing.B) {
	for _, sessions := range []int{1, 4} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) { benchEndToEnd(b, sessions) })
	}
}

func benchEndToEnd(b *testing.B, sessions int) {
	const items = 100
	n := e2e.StartNATS(b, false)
	bus := e2e.OpenNATSBus(b, n.URL(), false, prefix)
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
		srv := rctest.NewLoadServer(rctest.LoadOptions{ServerURI: s.URI, ChangesPerMessage: 100})
		b.Cleanup(srv.Close)
		if _, err := srv.Dial(e2e.WithTimeout(b, 10*time.Second), br.Addr()); err != nil {
			b.Fatal(err)
		}
		br.Await(s.URI, bridge.Online)
	}
	for confirmed.Load() < 10_000 { // warm up
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, base := time.Now(), confirmed.Load()
	for confirmed.Load()-base < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(confirmed.Load()-base)/time.Since(start).Seconds(), "changes/s")
}
