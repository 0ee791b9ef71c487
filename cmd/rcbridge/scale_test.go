package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rcbridge/rcbridge/internal/e2e"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// scaleSetup describes one scale run: one real rcbridge process (the
// embedded NATS bus, security None) with sessions configured servers and
// items mapped rows each, and as many rctest load servers in this process
// that reverse-connect at the same moment.
type scaleSetup struct {
	sessions, items int
	// perSource is how many servers dial from one loopback source address
	// (127.0.0.2, 127.0.0.3, …): the listener's per-source cap stays at its
	// default, as with servers on different hosts.
	perSource int
	jetstream bool
	// external puts the bus in a nats-server of the benchmark's process
	// (bus.kind = "nats", JetStream as set) instead of the bridge's
	// embedded one, so that the bridge's memory figures are its own and
	// not the broker's stream storage.
	external bool
	// bufferSize is the bridge's client.buffer_size; 0 leaves the key out
	// (the default).
	bufferSize int
	// sample is every how many servers the data routes are watched on the
	// bus (each sampled server's items must all arrive there).
	sample int
	// drop is how many servers lose their connection once every server
	// is online (they dial again and resume).
	drop int
	// onlineTimeout bounds the wait for every server to be online.
	onlineTimeout time.Duration
	// profileDir, if set, receives the bridge's heap profiles and
	// goroutines before and after the sessions (base.*, loaded.*) and its
	// CPU profile of the first 10 s after the dial (dial.cpu.pb.gz).
	profileDir string
}

// processSample is what the bridge process reports about itself after a
// forced garbage collection.
type processSample struct {
	heapInuse, heapLive, stack, rss, goroutines, cpu float64
}

// scaleResult is the outcome of a run.
type scaleResult struct {
	// online is from the moment the servers start dialing until the last
	// one's online presence arrived on the bus.
	online       time.Duration
	base, loaded processSample
	// firstValues is from the dial start until every server's first
	// values were published.
	firstValues time.Duration
	// redials counts connections the bridge lost after admitting them:
	// the server dialed again, as a real one does, and its session was
	// resumed on the new connection.
	redials int
	// problems are the bridge's last warnings and errors.
	problems string
}

// perSession returns (loaded - base) / sessions of one figure.
func (r scaleResult) perSession(sessions int, f func(processSample) float64) float64 {
	return (f(r.loaded) - f(r.base)) / float64(sessions)
}

// buffer returns the buffer size the bridge announces in its Hello.
func (s scaleSetup) buffer() int {
	if s.bufferSize == 0 {
		return rc.DefaultBufferSize
	}
	return s.bufferSize
}

func scaleURI(i int) string { return fmt.Sprintf("urn:scale:plc%04d", i) }
func scaleKey(i int) string { return fmt.Sprintf("plc%04d", i) }

// scaleConfig is the bridge's configuration for a run; natsURL is the
// external broker's when s.external is set.
func (s scaleSetup) config(dir, natsURL string) string {
	var b strings.Builder
	bufferKey := ""
	if s.bufferSize != 0 {
		bufferKey = "buffer_size = " + strconv.Itoa(s.bufferSize) + "\n"
	}
	bus := fmt.Sprintf(`[bus]
kind = "embedded"

[bus.embedded]
address = "127.0.0.1:0"
data_dir = %q

[bus.embedded.jetstream]
enabled = %t
`, filepath.Join(dir, "nats"), s.jetstream)
	if s.external {
		bus = fmt.Sprintf(`[bus]
kind = "nats"

[bus.nats]
urls = [%q]

[bus.nats.jetstream]
enabled = %t
`, natsURL, s.jetstream)
	}
	fmt.Fprintf(&b, `
[listener]
address = "127.0.0.1:0"
max_pending = %d

[client]
certificate_dir = %q
trust_dir = %q
%s
%s
[http]
address = "127.0.0.1:0"
pprof = true

[log]
format = "json"
`, max(64, s.sessions), filepath.Join(dir, "pki"), filepath.Join(dir, "trusted"), bufferKey, bus)
	for i := range s.sessions {
		fmt.Fprintf(&b, "\n[[servers]]\nuri = %q\nkey = %q\nsecurity_policy = \"None\"\nsecurity_mode = \"None\"\n", scaleURI(i), scaleKey(i))
	}
	for i := range s.items {
		fmt.Fprintf(&b, "\n[[map]]\nservers = \"urn:scale:*\"\nnode = \"nsu=%s;s=Tag%03d\"\nname = \"tag%03d\"\n", rctest.DefaultNamespaceURI, i, i)
	}
	return b.String()
}

// runScale runs one scale measurement and fails tb with what went wrong:
// a server refused, not online in time, values missing.
func runScale(tb testing.TB, s scaleSetup) scaleResult {
	tb.Helper()
	dir := tb.TempDir()
	natsURL := ""
	if s.external {
		broker := e2e.StartNATS(tb, s.jetstream)
		defer broker.Stop() // after the bridge's (deferred below: first) stop
		natsURL = broker.URL()
	}
	cfg := writeFile(tb, dir, "scale.toml", s.config(dir, natsURL))
	bridge := startProc(tb, dir, binaries.path(tb, "./cmd/rcbridge"), "-config", cfg, "-shutdown-timeout", "30s")
	running := bridge.waitLine(tb, "rcbridge running")
	listener, _ := running["listener"].(string)
	httpAddr, _ := running["http"].(string)
	busURL, _ := running["bus_url"].(string)
	if s.external {
		busURL = natsURL
	}
	base := "http://" + httpAddr
	defer func() {
		if err, took := bridge.stop(tb, time.Minute); err != nil {
			tb.Errorf("rcbridge exit after SIGTERM (%s): %v", took, err)
		}
	}()

	nc, err := nats.Connect(busURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	watch, err := watchBus(nc, s)
	if err != nil {
		tb.Fatal(err)
	}

	plcs := make([]*rctest.LoadServer, s.sessions)
	for i := range plcs {
		src := netip.AddrFrom4([4]byte{127, 0, byte(i / s.perSource / 250), byte(2 + i/s.perSource%250)})
		plcs[i] = rctest.NewLoadServer(rctest.LoadOptions{ServerURI: scaleURI(i), EndpointURL: fmt.Sprintf("opc.tcp://plc%04d.invalid:4840", i),
			ChangesPerMessage: s.items, Messages: 1, SourceAddr: src})
	}
	defer func() {
		var wg sync.WaitGroup
		for _, srv := range plcs {
			wg.Go(srv.Close)
		}
		wg.Wait()
	}()

	// Settled with no session: every server configured and offline, the
	// command routes (one per mapped row and server) subscribed.
	waitUntil(tb, 60*time.Second, "every server offline and the command routes subscribed before the run", func() bool {
		return metricValue(tb, base, `rcbridge_sessions{state="offline"}`) == float64(s.sessions) &&
			strings.Contains(bridge.log.String(), `"msg":"command routes subscribed"`)
	})
	var res scaleResult
	res.base = sampleProcess(tb, base, s.profileDir, "base")

	// Every server dials at the same moment.
	ctx, cancel := context.WithTimeout(context.Background(), s.onlineTimeout)
	defer cancel()
	start := make(chan struct{})
	var dialErrs atomic.Int64
	var firstErr sync.Once
	var dialErr error
	var dialing sync.WaitGroup
	closers := make([]func(), len(plcs))
	for i, srv := range plcs {
		dialing.Go(func() {
			<-start
			var err error
			if closers[i], err = srv.Dial(ctx, listener); err != nil {
				dialErrs.Add(1)
				firstErr.Do(func() { dialErr = err })
			}
		})
	}
	var cpuProfile sync.WaitGroup
	if s.profileDir != "" {
		cpuProfile.Go(func() { saveCPUProfile(tb, base, filepath.Join(s.profileDir, "dial.cpu.pb.gz")) })
	}
	defer cpuProfile.Wait()
	// A server whose connection ends dials again at once, as a real one
	// does (the bridge says "resuming" on the bus).
	var redials atomic.Int64
	var redialing sync.WaitGroup
	defer redialing.Wait()
	defer cancel()
	redialing.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case i := <-watch.lost:
				if _, err := plcs[i].Dial(ctx, listener); err != nil && ctx.Err() == nil {
					tb.Errorf("%s dialing again: %v", scaleURI(i), err)
				}
				redials.Add(1)
			}
		}
	})
	began := time.Now()
	close(start)
	dialing.Wait()
	if n := dialErrs.Load(); n > 0 {
		tb.Fatalf("%d of %d servers could not dial the bridge; the first: %v", n, s.sessions, dialErr)
	}
	select {
	case <-watch.allOnline:
	case <-ctx.Done():
		tb.Fatalf("only %d of %d servers online %s after the dial; admissions %s; setup failures %v",
			watch.onlineCount(), s.sessions, time.Since(began).Round(time.Millisecond), admissions(tb, base),
			metricValue(tb, base, "rcbridge_session_setup_failures_total"))
	}
	res.online = watch.lastOnline().Sub(began)
	for _, closeConn := range closers[:s.drop] {
		closeConn()
	}
	waitUntil(tb, 30*time.Second, "the dropped servers dialing again", func() bool { return redials.Load() >= int64(s.drop) })

	// Every server's first values published (the bridge's own count), the
	// sampled ones seen on the bus.
	var lagging []string
	waitUntilOr(tb, 60*time.Second, func() bool {
		lagging = lagging[:0]
		for uri, v := range servers(tb, base) {
			if v.State != stateOnline || v.Items != s.items || v.Published < uint64(s.items) {
				lagging = append(lagging, fmt.Sprintf("%s: %s since %s, %d items, %d notifications, %d published, last error %q",
					uri, v.State, v.Since.Format(time.RFC3339Nano), v.Items, v.Notifications, v.Published, v.LastError))
			}
		}
		return len(lagging) == 0
	}, func() string {
		return fmt.Sprintf("%d servers without their first values published, e.g.\n%s\nthe bridge's last warnings and errors:\n%s",
			len(lagging), strings.Join(lagging[:min(5, len(lagging))], "\n"), problems(bridge.log.String(), 20))
	})
	res.firstValues = time.Since(began)
	waitUntil(tb, 30*time.Second, "the sampled servers' values on the bus", func() bool { return watch.missing(s.items) == "" })

	// Nobody was refused, every session was set up once.
	var got, want string
	waitUntilOr(tb, 10*time.Second, func() bool {
		res.redials = int(redials.Load())
		got, want = admissions(tb, base), fmt.Sprintf("accepted=%d", s.sessions+res.redials)
		return got == want
	}, func() string {
		return fmt.Sprintf("admissions %s, want %s only (%d servers, %d dialed again)", got, want, s.sessions, res.redials)
	})
	if n := metricValue(tb, base, "rcbridge_sessions_total"); n != float64(s.sessions) {
		tb.Errorf("sessions set up: %v, want %d", n, s.sessions)
	}
	if n := metricValue(tb, base, "rcbridge_session_setup_failures_total"); n != 0 {
		tb.Errorf("session setup failures: %v", n)
	}
	wantBuf := uint32(s.buffer())
	for i, plc := range plcs {
		if r, w := plc.ClientBuffers(); r != wantBuf || w != wantBuf {
			tb.Errorf("server %d: the bridge's Hello announced buffers %d/%d, want %d (client.buffer_size)", i, r, w, wantBuf)
			break
		}
	}

	time.Sleep(2 * time.Second) // settle: the setup's transient buffers are garbage now
	res.loaded = sampleProcess(tb, base, s.profileDir, "loaded")
	res.problems = problems(bridge.log.String(), 10)
	return res
}

// busWatch follows the status routes of every server and the data routes
// of every s.sample-th one.
type busWatch struct {
	want      int
	allOnline chan struct{}
	// lost receives the index of every server the bridge says is
	// resuming: its connection ended.
	lost chan int

	mu     sync.Mutex
	online map[string]time.Time // first online presence by status subject
	last   time.Time
	data   map[string]map[string]bool // server key → data subjects seen
}

func watchBus(nc *nats.Conn, s scaleSetup) (*busWatch, error) {
	w := &busWatch{want: s.sessions, allOnline: make(chan struct{}), lost: make(chan int, s.sessions),
		online: make(map[string]time.Time), data: make(map[string]map[string]bool)}
	if _, err := nc.Subscribe("rcbridge.status.*", func(m *nats.Msg) {
		if bytes.Contains(m.Data, []byte(`"state":"resuming"`)) {
			var i int
			if _, err := fmt.Sscanf(m.Subject, "rcbridge.status.plc%d", &i); err == nil && i < s.sessions {
				select {
				case w.lost <- i:
				default: // the test fails on that server's state
				}
			}
			return
		}
		if !bytes.Contains(m.Data, []byte(`"state":"online"`)) {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.online[m.Subject]; ok {
			return
		}
		w.online[m.Subject], w.last = now, now
		if len(w.online) == w.want {
			close(w.allOnline)
		}
	}); err != nil {
		return nil, err
	}
	for i := 0; i < s.sessions; i += s.sample {
		key := scaleKey(i)
		w.data[key] = make(map[string]bool)
		if _, err := nc.Subscribe("rcbridge."+key+".*", func(m *nats.Msg) {
			w.mu.Lock()
			w.data[key][m.Subject] = true
			w.mu.Unlock()
		}); err != nil {
			return nil, err
		}
	}
	return w, nc.Flush()
}

func (w *busWatch) onlineCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.online)
}

func (w *busWatch) lastOnline() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// missing describes the sampled servers whose items did not all arrive,
// "" when none.
func (w *busWatch) missing(items int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for key, seen := range w.data {
		if len(seen) != items {
			out = append(out, fmt.Sprintf("%s: %d of %d", key, len(seen), items))
		}
	}
	return strings.Join(out, ", ")
}

// sampleProcess forces a garbage collection in the bridge (the heap
// profile with gc=1, kept in dir as name.heap.pb.gz with the goroutines
// in name.goroutines.txt when dir is set) and reads the
// runtime and process figures from /metrics.
func sampleProcess(tb testing.TB, base, dir, name string) processSample {
	tb.Helper()
	res, err := http.Get(base + "/debug/pprof/heap?gc=1")
	if err != nil {
		tb.Fatal(err)
	}
	prof, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Fatalf("heap profile: %d %v", res.StatusCode, err)
	}
	if dir != "" {
		code, goroutines, _ := get(tb, base+"/debug/pprof/goroutine?debug=1")
		if code != http.StatusOK {
			tb.Fatalf("goroutine profile: %d", code)
		}
		for file, b := range map[string][]byte{name + ".heap.pb.gz": prof, name + ".goroutines.txt": []byte(goroutines)} {
			if err := os.WriteFile(filepath.Join(dir, file), b, 0o600); err != nil {
				tb.Fatal(err)
			}
		}
	}
	m := metricsOf(tb, base)
	get := func(series string) float64 {
		v, ok := m[series]
		if !ok {
			tb.Fatalf("/metrics has no %s", series)
		}
		return v
	}
	return processSample{
		heapInuse:  get("go_memstats_heap_inuse_bytes"),
		heapLive:   get("go_gc_heap_live_bytes"),
		stack:      get("go_memstats_stack_inuse_bytes"),
		rss:        get("process_resident_memory_bytes"),
		goroutines: get("go_goroutines"),
		cpu:        get("process_cpu_seconds_total"),
	}
}

// saveCPUProfile writes the bridge's CPU profile of the next 10 s to
// path; it runs beside the test, so it reports with Errorf.
func saveCPUProfile(tb testing.TB, base, path string) {
	res, err := http.Get(base + "/debug/pprof/profile?seconds=10")
	if err != nil {
		tb.Errorf("CPU profile: %v", err)
		return
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode == http.StatusOK {
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Errorf("CPU profile: %d %v", res.StatusCode, err)
	}
}

// metricsOf returns every sample line of /metrics by series.
func metricsOf(tb testing.TB, base string) map[string]float64 {
	tb.Helper()
	code, body, _ := get(tb, base+"/metrics")
	if code != http.StatusOK {
		tb.Fatalf("/metrics: %d", code)
	}
	out := make(map[string]float64)
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, "#") {
			continue
		}
		series, v, ok := strings.Cut(strings.TrimSpace(l), " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[series] = f
		}
	}
	return out
}

func metricValue(tb testing.TB, base, series string) float64 {
	tb.Helper()
	v, ok := metricsOf(tb, base)[series]
	if !ok {
		tb.Fatalf("/metrics has no %s", series)
	}
	return v
}

// admissions lists the non-zero admission outcomes ("accepted=1000").
func admissions(tb testing.TB, base string) string {
	tb.Helper()
	m := metricsOf(tb, base)
	var out []string
	for _, o := range strings.Fields(admissionOutcomes) {
		if v := m[`rcbridge_admissions_total{outcome="`+o+`"}`]; v != 0 {
			out = append(out, fmt.Sprintf("%s=%v", o, v))
		}
	}
	return strings.Join(out, " ")
}

// waitUntil polls cond every 200 ms and fails after timeout.
func waitUntil(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	waitUntilOr(tb, timeout, cond, func() string { return what })
}

// waitUntilOr is waitUntil with the failure described by why.
func waitUntilOr(tb testing.TB, timeout time.Duration, cond func() bool, why func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting: %s", timeout, why())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// problems returns the last n lines of a JSON log that are not INFO.
func problems(log string, n int) string {
	var out []string
	for l := range strings.Lines(log) {
		if !strings.Contains(l, `"level":"INFO"`) && !strings.Contains(l, `"level":"DEBUG"`) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// loadAverage returns the 1-minute load average of the machine.
func loadAverage() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty /proc/loadavg")
	}
	return strconv.ParseFloat(f[0], 64)
}

// TestScaleHarness runs the scale benchmark's harness small: 40 servers
// from 5 source addresses (8 each, the per-source cap) dial the real
// rcbridge at once; all must be admitted, online and publish all their
// items, two that lose their connection must dial again and resume, and
// the bridge's memory figures must be readable. The bridge runs with
// client.buffer_size = 16 KiB, which every server must see in its Hello,
// once with its embedded core NATS bus and once publishing into an
// external JetStream nats-server (the benchmark's broker=external).
func TestScaleHarness(t *testing.T) {
	for _, c := range []struct {
		name                string
		jetstream, external bool
	}{{"embedded core", false, false}, {"external jetstream", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			s := scaleSetup{sessions: 40, items: 10, perSource: 8, sample: 4, drop: 2, bufferSize: 16 << 10,
				jetstream: c.jetstream, external: c.external, onlineTimeout: 60 * time.Second}
			r := runScale(t, s)
			if r.redials != s.drop {
				t.Errorf("%d servers dialed again, want the %d dropped ones", r.redials, s.drop)
			}
			t.Logf("online after %s, values after %s; bridge before %+v, after %+v", r.online, r.firstValues, r.base, r.loaded)
			if r.online <= 0 || r.firstValues < r.online || r.base.heapLive <= 0 || r.loaded.heapLive <= r.base.heapLive ||
				r.loaded.goroutines <= r.base.goroutines || r.loaded.rss <= 0 {
				t.Errorf("implausible figures: %+v", r)
			}
		})
	}
}

// BenchmarkScale measures one bridge with many reverse-connected sessions
// (issue 6: 1,000 sessions of 100 items, memory per session ≤ 512 KiB, all
// online within 30 s of dialing at the same moment). The bridge is the
// real rcbridge executable in its own process (security None) with its
// embedded NATS server (core or JetStream: broker=embedded, the broker's
// stream storage counted in the bridge's memory) or with a JetStream
// nats-server in the benchmark's process (broker=external: the bridge's
// own memory); the servers are rctest load servers in the
// benchmark's process, 8 per loopback source address, each sending its
// 100 initial values once and keep-alives after that. Each iteration
// starts a fresh bridge. The 1,000-session runs are measured with the
// default client.buffer_size (32 KiB) and with 16 KiB, the buffer size
// most of a session's memory follows; run the benchmark several times
// (-count runs one sub-benchmark's iterations back to back, a shell loop
// interleaves them).
//
// Reported: online-s (dial start until the last online presence arrived
// on the bus); values-s (until the bridge had published every server's
// first values); base-heap-MiB (the bridge's heap in use with every server
// configured and no session); heap-, live-, stack- and rss-KiB/session
// (the bridge's growth per session in heap in use and live heap after a
// forced GC, goroutine stacks and resident memory); goroutines/session;
// bridge-cpu-s (the bridge's CPU time for the whole setup); redials
// (connections the bridge closed after admitting them, for example when
// its stall watchdog found no Publish response in time: the server dials
// again at once, as a real one would, and the session resumes); loadavg
// (the machine's 1-minute load average).
//
//	go test -run '^$' -bench Scale -benchtime 1x ./cmd/rcbridge
//
// RCBRIDGE_SCALE_PROFILES=dir keeps the bridge's profiles there (heap and
// goroutines before and after, CPU of the dial phase; go tool pprof
// -sample_index=inuse_space -diff_base dir/base.heap.pb.gz
// dir/loaded.heap.pb.gz).
func BenchmarkScale(b *testing.B) {
	for _, c := range []struct {
		sessions  int
		jetstream bool
		external  bool
		buffer    int
	}{
		{100, false, false, 0}, {1000, false, false, 0}, {1000, false, false, 16 << 10},
		{1000, true, false, 0}, {1000, true, false, 16 << 10}, {1000, true, true, 0},
	} {
		bus, broker := "core", "embedded"
		if c.jetstream {
			bus = "jetstream"
		}
		if c.external {
			broker = "external"
		}
		s := scaleSetup{sessions: c.sessions, items: 100, perSource: 8, jetstream: c.jetstream, external: c.external, bufferSize: c.buffer,
			sample: 50, onlineTimeout: 120 * time.Second, profileDir: os.Getenv("RCBRIDGE_SCALE_PROFILES")}
		b.Run(fmt.Sprintf("sessions=%d/bus=%s/broker=%s/buffer=%dKiB", c.sessions, bus, broker, s.buffer()>>10), func(b *testing.B) {
			var sum struct{ online, values, base, heap, live, stack, rss, gor, cpu, redials float64 }
			for b.Loop() {
				r := runScale(b, s)
				n := s.sessions
				sum.online += r.online.Seconds()
				sum.values += r.firstValues.Seconds()
				sum.base += r.base.heapInuse
				sum.heap += r.perSession(n, func(p processSample) float64 { return p.heapInuse })
				sum.live += r.perSession(n, func(p processSample) float64 { return p.heapLive })
				sum.stack += r.perSession(n, func(p processSample) float64 { return p.stack })
				sum.rss += r.perSession(n, func(p processSample) float64 { return p.rss })
				sum.gor += r.perSession(n, func(p processSample) float64 { return p.goroutines })
				sum.cpu += r.loaded.cpu - r.base.cpu
				sum.redials += float64(r.redials)
				if r.redials > 0 {
					b.Logf("%d connections lost after admission and dialed again; the bridge's last warnings:\n%s", r.redials, r.problems)
				}
			}
			runs := float64(b.N)
			b.ReportMetric(sum.online/runs, "online-s")
			b.ReportMetric(sum.values/runs, "values-s")
			b.ReportMetric(sum.base/runs/(1<<20), "base-heap-MiB")
			b.ReportMetric(sum.heap/runs/1024, "heap-KiB/session")
			b.ReportMetric(sum.live/runs/1024, "live-KiB/session")
			b.ReportMetric(sum.stack/runs/1024, "stack-KiB/session")
			b.ReportMetric(sum.rss/runs/1024, "rss-KiB/session")
			b.ReportMetric(sum.gor/runs, "goroutines/session")
			b.ReportMetric(sum.cpu/runs, "bridge-cpu-s")
			b.ReportMetric(sum.redials/runs, "redials")
			if la, err := loadAverage(); err == nil {
				b.ReportMetric(la, "loadavg")
			}
		})
	}
}
