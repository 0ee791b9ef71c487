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

// CompareWithFloor measures the CPU time this process spends per data
// change that proc's load servers send (all of them paused at the start,
// see LoadServer.Pause), against gopcua's decode floor for messages of per
// changes, in rounds that alternate the two so that both see the same
// machine load. delivered counts the changes handled so far (delivered,
// published, confirmed: whatever the benchmark measures).
//
// A round resumes the load until delivered grew by an eighth of b.N,
// pauses it, and waits until the process is idle, so that the CPU time of
// the round covers exactly the changes it counted; then it decodes as many
// changes' worth of messages (DecodeFloorCPU). The benchmark timer runs
// while the load does. It reports:
//
//	changes/s            delivered per second of load
//	cpu-ns/change        this process's CPU time per change
//	floor-cpu-ns/change  the decode floor's CPU time per change
//	cpu/floor            their ratio
func CompareWithFloor(b *testing.B, proc *LoadProcess, per int, delivered func() int64) {
	b.Helper()
	msg, err := PublishMessage(per)
	if err != nil {
		b.Fatal(err)
	}
	fail := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	fail(proc.Pause(true))
	fail(waitIdle(delivered))
	b.StopTimer()
	b.ResetTimer()
	const rounds = 8
	share := max(int64(b.N)/rounds, 1)
	var total, floorChanges int64
	var wall, cpu, floor time.Duration
	for total < int64(b.N) {
		runtime.GC()
		c0, err := ProcessCPU()
		fail(err)
		d0 := delivered()
		b.StartTimer()
		t0 := time.Now()
		fail(proc.Pause(false))
		for deadline := t0.Add(time.Minute); delivered()-d0 < share; {
			if time.Now().After(deadline) {
				b.Fatalf("rctest: %d changes in a minute, waiting for %d", delivered()-d0, share)
			}
			time.Sleep(time.Millisecond)
		}
		fail(proc.Pause(true))
		wall += time.Since(t0)
		b.StopTimer()
		fail(waitIdle(delivered))
		c1, err := ProcessCPU()
		fail(err)
		n := delivered() - d0
		total += n
		cpu += c1 - c0
		f, err := DecodeFloorCPU(msg, int(n)/per)
		fail(err)
		floor += f
		floorChanges += n / int64(per) * int64(per)
	}
	perChange := float64(cpu.Nanoseconds()) / float64(total)
	floorPerChange := float64(floor.Nanoseconds()) / float64(floorChanges)
	b.ReportMetric(float64(total)/wall.Seconds(), "changes/s")
	b.ReportMetric(perChange, "cpu-ns/change")
	b.ReportMetric(floorPerChange, "floor-cpu-ns/change")
	b.ReportMetric(perChange/floorPerChange, "cpu/floor")
}

// waitIdle returns once the process has been idle, using under a tenth
// of a core and delivering nothing, for two 20 ms windows in a row.
func waitIdle(delivered func() int64) error {
	const window = 20 * time.Millisecond
	quiet := 0
	for deadline := time.Now().Add(30 * time.Second); quiet < 2; {
		if time.Now().After(deadline) {
			return fmt.Errorf("rctest: process not idle within 30 s of pausing the load")
		}
		c0, err := ProcessCPU()
		if err != nil {
			return err
		}
		d0 := delivered()
		time.Sleep(window)
		c1, err := ProcessCPU()
		if err != nil {
			return err
		}
		if c1-c0 < window/10 && delivered() == d0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return nil
}
