package rctest

import (
	"testing"
	"time"
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
