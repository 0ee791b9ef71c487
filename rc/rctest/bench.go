package rctest

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gopcua/opcua/uasc"
)

// Paired runs fa and fb alternately, once each per iteration of b (which
// one goes first alternates too), and reports each one's time per call (as
// "<nameA>-ns/op" and "<nameB>-ns/op") and the ratio "<nameA>/<nameB>".
// Alternating calls see the same machine load, so their ratio holds on a
// busy machine where two separate benchmarks would not be comparable.
func Paired(b *testing.B, nameA string, fa func() error, nameB string, fb func() error) {
	b.Helper()
	var ta, tb time.Duration
	timed := func(name string, f func() error) time.Duration {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return time.Since(t0)
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			ta += timed(nameA, fa)
			tb += timed(nameB, fb)
		} else {
			tb += timed(nameB, fb)
			ta += timed(nameA, fa)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(ta.Nanoseconds())/n, nameA+"-ns/op")
	b.ReportMetric(float64(tb.Nanoseconds())/n, nameB+"-ns/op")
	b.ReportMetric(float64(ta)/float64(tb), nameA+"/"+nameB)
}

// MeasureCPU runs f after a garbage collection and returns the CPU time
// the process used meanwhile (see ProcessCPU): f's own work, the garbage
// collection it caused, and whatever else the process did.
func MeasureCPU(f func() error) (time.Duration, error) {
	runtime.GC()
	t0, err := ProcessCPU()
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	t1, err := ProcessCPU()
	return t1 - t0, err
}

// DecodeFloorCPU decodes the message msg (one chunk, see PublishMessage)
// n times with gopcua, as its secure channel decodes a response, and
// returns the CPU time used (MeasureCPU): the least any gopcua-based
// client spends on n such messages.
func DecodeFloorCPU(msg []byte, n int) (time.Duration, error) {
	return MeasureCPU(func() error {
		for range n {
			if _, err := new(uasc.Message).Decode(msg); err != nil {
				return fmt.Errorf("rctest: decode floor: %w", err)
			}
		}
		return nil
	})
}
