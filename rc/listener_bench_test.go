package rc

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func BenchmarkReadHello(b *testing.B) {
	r := bytes.NewReader(capturedNodeOPCUA)
	b.SetBytes(int64(len(capturedNodeOPCUA)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(capturedNodeOPCUA)
		if _, err := ReadHello(r, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmit measures admissions per second over loopback: connect, send
// the ReverseHello, decode, validate, hand off through Accept. The consumer
// closes each session; the dialer waits for that close, so every counted
// admission went all the way through.
func BenchmarkAdmit(b *testing.B) {
	l := startListener(b, ListenerConfig{MaxPendingPerSource: DefaultMaxPending})
	frame, _ := Hello{ServerURI: testURI, EndpointURL: testEndpoint}.Encode()
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			s, err := l.Accept(ctx)
			if err != nil {
				return
			}
			_ = s.Conn.Close()
		}
	}()
	defer func() { cancel(); <-consumed }()

	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf [64]byte
		for pb.Next() {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Write(frame); err != nil {
				b.Error(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(testWait))
			if n, err := c.Read(buf[:]); n != 0 || err != io.EOF {
				b.Errorf("want the session closed by the consumer: %d bytes %q, %v", n, buf[:n], err)
			}
			_ = c.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admissions/s")
}

// BenchmarkAdmitUnderFlood measures how long a legitimate server waits for
// admission (dial until Accept returns its session) while 1,000 slow sockets
// from 125 addresses are open, each having sent "RHE" and then nothing.
// Target: p99 ≤ 50 ms.
//
//   - default-caps: the 64-socket pending pool is full of slow sockets
//     before every admission (refilled outside the measurement), so each
//     admission evicts one;
//   - pool-1024: the pool is large enough for all of them, so 1,000 slow
//     sockets are pending at once, each with its own goroutine.
func BenchmarkAdmitUnderFlood(b *testing.B) {
	const slow = 1000
	needFDs(b, 3*slow+1000)
	prefix := []byte("RHE")
	for _, bc := range []struct {
		name       string
		maxPending int
	}{
		{"default-caps", 0},
		{"pool-1024", 1024},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := startListener(b, ListenerConfig{MaxPending: bc.maxPending, HandshakeTimeout: time.Hour})
			openSlow(b, l, slow, prefix)
			full := min(slow, l.cfg.MaxPending)
			waitPending(b, l, stateReading, full)
			frame, _ := Hello{ServerURI: testURI, EndpointURL: testEndpoint}.Encode()

			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				c, err := dialFromErr(l, "127.0.0.1")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(frame); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), testWait)
				s, err := l.Accept(ctx)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))

				b.StopTimer()
				_ = s.Conn.Close()
				_ = c.Close()
				// Accept can return before the handshake goroutine has
				// released the admitted socket's pending slot.
				waitPending(b, l, stateAdmitting, 0)
				if l.pendingStates()[stateReading] < full {
					// Put back the slow socket the admission evicted.
					openSlowAt(b, l, roomySource(b, l), prefix)
					waitPending(b, l, stateReading, full)
				}
				b.StartTimer()
			}
			slices.Sort(lat)
			b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
		})
	}
}

// openSlowAt opens one more slow socket from src, closed at cleanup.
func openSlowAt(b *testing.B, l *Listener, src string, prefix []byte) {
	c := dialFrom(b, l, src)
	if _, err := c.Write(prefix); err != nil {
		b.Fatal(err)
	}
}

// roomySource returns a loopback address in 127.0.2.0/24 below its
// per-source cap, so that a refill adds a pending socket instead of
// evicting one of its own.
func roomySource(b *testing.B, l *Listener) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 1; i < 255; i++ {
		a := netip.AddrFrom4([4]byte{127, 0, 2, byte(i)})
		if len(l.pool.bySource[sourceOf(a)]) < l.cfg.MaxPendingPerSource {
			return a.String()
		}
	}
	b.Fatal("no loopback source below its cap")
	return ""
}

// percentile returns the nearest-rank q-quantile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
