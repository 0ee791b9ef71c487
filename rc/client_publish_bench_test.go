package rc_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// publishMessage encodes a PublishResponse chunk like the load server's:
// changes uint32 data changes with both timestamps.
func publishMessage(b *testing.B, changes int) []byte {
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	items := make([]*ua.MonitoredItemNotification, changes)
	for i := range items {
		items[i] = &ua.MonitoredItemNotification{ClientHandle: uint32(i%3 + 1), Value: &ua.DataValue{
			EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:        ua.MustVariant(uint32(i)), SourceTimestamp: ts, ServerTimestamp: ts,
		}}
	}
	msg, err := (&uasc.Message{
		MessageHeader: &uasc.MessageHeader{
			Header:                  uasc.NewHeader("MSG", 'F', 1),
			SymmetricSecurityHeader: uasc.NewSymmetricSecurityHeader(1),
			SequenceHeader:          uasc.NewSequenceHeader(1, 1),
		},
		TypeID: ua.NewFourByteExpandedNodeID(0, id.PublishResponse_Encoding_DefaultBinary),
		Service: &ua.PublishResponse{
			ResponseHeader:      &ua.ResponseHeader{Timestamp: ts, ServiceDiagnostics: &ua.DiagnosticInfo{}, AdditionalHeader: ua.NewExtensionObject(nil)},
			SubscriptionID:      1,
			NotificationMessage: &ua.NotificationMessage{SequenceNumber: 1, PublishTime: ts, NotificationData: []*ua.ExtensionObject{ua.NewExtensionObject(&ua.DataChangeNotification{MonitoredItems: items})}},
		},
	}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// subscribedClient builds a client on a connection from srv with one
// subscription (10 ms) monitoring items; it returns the client and the
// connection's drop function.
func subscribedClient(b *testing.B, srv *rctest.LoadServer, ln *net.TCPListener, items ...string) (*rc.Client, func()) {
	b.Helper()
	s, drop := loadConnect(b, srv, ln)
	c, err := newFactory(b, rc.ClientConfig{}).Build(ctxTimeout(b, 10*time.Second), s)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(ctxTimeout(b, 5*time.Second)) })
	sub, err := c.Subscribe(ctxTimeout(b, 5*time.Second), rc.SubscriptionParams{PublishingInterval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]rc.MonitorRequest, len(items))
	for i, name := range items {
		reqs[i] = rc.MonitorRequest{NodeID: ua.NewStringNodeID(1, name)}
	}
	if _, err := sub.Monitor(ctxTimeout(b, 5*time.Second), reqs...); err != nil {
		b.Fatal(err)
	}
	return c, drop
}

// BenchmarkPublish measures the publish engine's cost per delivered data
// change (ns/op is per change):
//
//   - client: rc.Client subscribed to the rctest load server over a reverse
//     socket, 100 changes per NotificationMessage, every message
//     acknowledged after delivery. Includes the load server, which only
//     patches pre-encoded messages, and the loopback socket.
//
//   - decode-floor: gopcua decoding the same PublishResponse chunk, the
//     least any gopcua-based client must spend.
//
//     go test -run '^$' -bench BenchmarkPublish -benchmem ./rc
func BenchmarkPublish(b *testing.B) {
	const per = 100
	b.Run("client", func(b *testing.B) {
		srv := rctest.NewLoadServer(rctest.LoadOptions{ChangesPerMessage: per})
		b.Cleanup(srv.Close)
		c, _ := subscribedClient(b, srv, listen(b), "a", "b")
		notifications := c.Notifications()
		for range 10 { // warm up
			n := <-notifications
			n.Ack()
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		got := 0
		for got < b.N {
			n := <-notifications
			got += len(n.DataChanges)
			n.Ack()
		}
		b.StopTimer()
		b.ReportMetric(float64(got)/time.Since(start).Seconds(), "changes/s")
	})
	b.Run("decode-floor", func(b *testing.B) {
		msg := publishMessage(b, per)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += per {
			m := new(uasc.Message)
			if _, err := m.Decode(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResumeDelivery measures Resume with the publish engine running:
// from the server's next connection (RHE read) to the first notification
// delivered after it, which is republished when the old socket took
// messages with it. Dropping the old socket and the re-dial are not timed.
func BenchmarkResumeDelivery(b *testing.B) {
	srv := rctest.NewLoadServer(rctest.LoadOptions{ChangesPerMessage: 10})
	b.Cleanup(srv.Close)
	ln := listen(b)
	c, drop := subscribedClient(b, srv, ln, "a")
	notifications := c.Notifications()
	next := func() *rc.Notification {
		select {
		case n := <-notifications:
			n.Ack()
			return n
		case <-time.After(10 * time.Second):
			b.Fatal("no notification")
			return nil
		}
	}
	next()
	var republished int
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		drop()
		<-c.Done()
		for drained := false; !drained; { // take what arrived before the drop
			select {
			case n := <-notifications:
				n.Ack()
			case <-time.After(50 * time.Millisecond):
				drained = true
			}
		}
		s, d := loadConnect(b, srv, ln)
		drop = d
		b.StartTimer()
		if _, err := c.Resume(ctxTimeout(b, 10*time.Second), s); err != nil {
			b.Fatal(err)
		}
		if next().Republished {
			republished++
		}
	}
	b.ReportMetric(float64(republished)/float64(b.N), "republished-first")
}

// BenchmarkIdleSessionMemory measures the heap a client keeps per idle
// session with one subscription of 100 monitored items (the load server's
// side, in the same process, is included; it is a few KB).
func BenchmarkIdleSessionMemory(b *testing.B) {
	const sessions, items = 100, 100
	// ns/op is the time to set up the 100 sessions.
	for b.Loop() {
		srv := rctest.NewLoadServer(rctest.LoadOptions{ChangesPerMessage: 1, Messages: 1})
		ln := listen(b)
		f := newFactory(b, rc.ClientConfig{})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		clients := make([]*rc.Client, 0, sessions)
		for range sessions {
			s, _ := loadConnect(b, srv, ln)
			c, err := f.Build(ctxTimeout(b, 10*time.Second), s)
			if err != nil {
				b.Fatal(err)
			}
			sub, err := c.Subscribe(ctxTimeout(b, 5*time.Second), rc.SubscriptionParams{})
			if err != nil {
				b.Fatal(err)
			}
			reqs := make([]rc.MonitorRequest, items)
			for i := range reqs {
				reqs[i] = rc.MonitorRequest{NodeID: ua.NewStringNodeID(1, fmt.Sprint("item", i))}
			}
			if _, err := sub.Monitor(ctxTimeout(b, 5*time.Second), reqs...); err != nil {
				b.Fatal(err)
			}
			go func() {
				for n := range c.Notifications() {
					n.Ack()
				}
			}()
			clients = append(clients, c)
		}
		time.Sleep(200 * time.Millisecond) // the one message is delivered, the rest is keep-alives
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/sessions, "heap-bytes/session")
		b.ReportMetric(float64(runtime.NumGoroutine())/sessions, "goroutines/session")
		b.StopTimer()
		for _, c := range clients {
			_ = c.Close(ctxTimeout(b, 5*time.Second))
		}
		srv.Close()
		b.StartTimer()
	}
}
