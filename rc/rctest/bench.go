package rctest

import (
	"testing"
	"time"
)

// Paired runs fa and fb alternately, once each per iteration of b, and
// reports each one's time per call (as "<nameA>-ns/op" and "<nameB>-ns/op")
// and the ratio "<nameA>/<nameB>". Alternating calls see the same machine
// load, so their ratio holds on a busy machine where two separate
// benchmarks would not be comparable.
func Paired(b *testing.B, nameA string, fa func() error, nameB string, fb func() error) {
	b.Helper()
	var ta, tb time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := fa(); err != nil {
			b.Fatalf("%s: %v", nameA, err)
		}
		t1 := time.Now()
		if err := fb(); err != nil {
			b.Fatalf("%s: %v", nameB, err)
		}
		ta, tb = ta+t1.Sub(t0), tb+time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(ta.Nanoseconds())/n, nameA+"-ns/op")
	b.ReportMetric(float64(tb.Nanoseconds())/n, nameB+"-ns/op")
	b.ReportMetric(float64(ta)/float64(tb), nameA+"/"+nameB)
}
