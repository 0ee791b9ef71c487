package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // gopcua's server logs through the standard logger
	goleak.VerifyTestMain(m)
}

// sim runs rcsim with args until the test ends.
func sim(t *testing.T, args ...string) {
	t.Helper()
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("rcsim did not stop")
		}
	})
}

// listen starts an rc.Listener with validator v on loopback.
func listen(t *testing.T, v rc.Validator, obs rc.Observer) *rc.Listener {
	t.Helper()
	l, err := rc.Listen(context.Background(), "127.0.0.1:0", rc.ListenerConfig{Validator: v, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func allow(t *testing.T, uris ...string) *rc.AllowList {
	t.Helper()
	a, err := rc.NewAllowList(uris...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func connectURL(l *rc.Listener) string { return "opc.tcp://" + l.Addr().String() }

func accept(t *testing.T, l *rc.Listener) *rc.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return s
}

func build(t *testing.T, s *rc.Session) *rc.Client {
	t.Helper()
	f, err := rc.NewFactory(rc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := f.Build(ctx, s)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// node resolves "nsu=<namespace>;s=<name>" on c.
func node(t *testing.T, c *rc.Client, name string) *ua.NodeID {
	t.Helper()
	n, err := c.ParseNodeID("nsu=" + defaultNamespace + ";s=" + name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readOne(t *testing.T, c *rc.Client, n *ua.NodeID) any {
	t.Helper()
	dvs, err := c.ReadValues(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if dvs[0].Status != ua.StatusOK {
		t.Fatalf("read %v: %v", n, dvs[0].Status)
	}
	return dvs[0].Value.Value()
}

// TestPlant: rcsim dials an rc.Listener, is admitted, and an rc.Factory
// client reads, writes and calls the plant model.
func TestPlant(t *testing.T) {
	l := listen(t, allow(t, "urn:test:line1"), nil)
	sim(t, "-connect", connectURL(l), "-server-uri", "urn:test:line1", "-nodes", "2", "-interval", "20ms")
	s := accept(t, l)
	if s.ServerURI != "urn:test:line1" {
		t.Fatalf("ServerURI %q", s.ServerURI)
	}
	c := build(t, s)
	ctx := ctxT(t)

	c1, c2 := node(t, c, "Counter1"), node(t, c, "Counter2")
	if _, err := c.ParseNodeID("nsu=" + defaultNamespace + ";s=Counter3"); err != nil {
		t.Fatal(err)
	}
	if dvs, err := c.ReadValues(ctx, node(t, c, "Counter3")); err != nil || dvs[0].Status != ua.StatusBadNodeIDUnknown {
		t.Errorf("Counter3 with -nodes 2: %v, %v", dvs, err)
	}
	first := readOne(t, c, c2).(int32)
	waitFor(t, "Counter2 to grow by 2 per tick", func() bool {
		v := readOne(t, c, c2).(int32)
		return v > first && (v-first)%2 == 0
	})
	if _, ok := readOne(t, c, node(t, c, "Sine")).(float64); !ok {
		t.Error("Sine is not a Double")
	}

	sp, temp := node(t, c, "SetPoint"), node(t, c, "Temperature")
	if got := readOne(t, c, sp); got != initialSetPoint {
		t.Errorf("SetPoint = %v, want %v", got, initialSetPoint)
	}
	for _, tc := range []struct {
		v    any
		want ua.StatusCode
	}{
		{80.0, ua.StatusOK},
		{100.5, ua.StatusBadOutOfRange},
		{int32(50), ua.StatusBadTypeMismatch},
		{"hot", ua.StatusBadTypeMismatch},
	} {
		if st, err := c.WriteValue(ctx, sp, ua.MustVariant(tc.v)); err != nil || st != tc.want {
			t.Errorf("write SetPoint %v = %v, %v; want %v", tc.v, st, err, tc.want)
		}
	}
	if got := readOne(t, c, sp); got != 80.0 {
		t.Errorf("SetPoint = %v after the writes, want 80", got)
	}
	waitFor(t, "Temperature to reach the set point", func() bool { return readOne(t, c, temp) == 80.0 })
	if st, err := c.WriteValue(ctx, temp, ua.MustVariant(1.0)); err != nil || st != ua.StatusBadUserAccessDenied {
		t.Errorf("write Temperature = %v, %v; want BadUserAccessDenied", st, err)
	}

	plantID, reset := node(t, c, "Plant"), node(t, c, "Plant.Reset")
	res, err := c.CallMethod(ctx, plantID, reset, ua.MustVariant(int32(-1000)))
	if err != nil || res.StatusCode != ua.StatusOK || len(res.OutputArguments) != 1 || res.OutputArguments[0].Value() != uint32(2) {
		t.Fatalf("Reset(-1000) = %+v, %v", res, err)
	}
	if v := readOne(t, c, c1).(int32); v >= 0 {
		t.Errorf("Counter1 = %d right after Reset(-1000)", v)
	}
	if res, err := c.CallMethod(ctx, plantID, reset, ua.MustVariant("x")); err != nil || res.StatusCode != ua.StatusBadTypeMismatch {
		t.Errorf("Reset(\"x\") = %+v, %v", res, err)
	}
	if res, err := c.CallMethod(ctx, plantID, reset); err != nil || res.StatusCode != ua.StatusBadArgumentsMissing {
		t.Errorf("Reset() = %+v, %v", res, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedialAfterDrop: when the connection drops, rcsim dials again and the
// client gets a working session on the new socket.
func TestRedialAfterDrop(t *testing.T) {
	l := listen(t, allow(t, defaultServerURI), nil)
	sim(t, "-connect", connectURL(l), "-backoff-min", "10ms", "-interval", "50ms")
	for i := range 3 {
		s := accept(t, l)
		c := build(t, s)
		if v := readOne(t, c, node(t, c, "SetPoint")); v != initialSetPoint {
			t.Fatalf("session %d: SetPoint = %v", i, v)
		}
		_ = s.Conn.Close() // the drop, under the client's feet
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("client did not notice the drop")
		}
	}
}

// TestRedialAfterRefusal: a refused ReverseHello is retried with backoff
// until the client admits the server.
func TestRedialAfterRefusal(t *testing.T) {
	var seen, rejected atomic.Int32
	v := rc.ValidatorFunc(func(h rc.Hello) error {
		if seen.Add(1) <= 3 {
			return fmt.Errorf("not yet: %w", rc.ErrNotAllowed)
		}
		return nil
	})
	obs := rc.ObserverFunc(func(e rc.Event) {
		if e.Kind == rc.EventRejected {
			rejected.Add(1)
		}
	})
	l := listen(t, v, obs)
	sim(t, "-connect", connectURL(l), "-backoff-min", "10ms", "-backoff-max", "40ms")
	s := accept(t, l)
	if n := rejected.Load(); n != 3 {
		t.Errorf("%d rejections before admission, want 3", n)
	}
	build(t, s)
}

// TestSeveral: one rcsim dials two clients; two rcsim instances with
// different ServerUris dial the same client.
func TestSeveral(t *testing.T) {
	l1 := listen(t, allow(t, "urn:test:a", "urn:test:b"), nil)
	l2 := listen(t, allow(t, "urn:test:a"), nil)
	sim(t, "-connect", connectURL(l1), "-connect", connectURL(l2), "-server-uri", "urn:test:a")
	sim(t, "-connect", connectURL(l1), "-server-uri", "urn:test:b")
	got := map[string]bool{}
	for range 2 {
		s := accept(t, l1)
		got[s.ServerURI] = true
		build(t, s)
	}
	if !got["urn:test:a"] || !got["urn:test:b"] {
		t.Errorf("client 1 got sessions from %v", got)
	}
	s := accept(t, l2)
	if s.ServerURI != "urn:test:a" {
		t.Errorf("client 2 got %q", s.ServerURI)
	}
	if v := readOne(t, build(t, s), ua.NewNumericNodeID(0, 2255)); len(v.([]string)) < 2 { // NamespaceArray
		t.Errorf("NamespaceArray %v", v)
	}
}

func TestFlags(t *testing.T) {
	good := []string{"-connect", "opc.tcp://127.0.0.1:4844"}
	o, err := parseFlags(append(good, "-connect", "opc.tcp://bridge"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:4844", "bridge:4840"}; strings.Join(o.connect, " ") != strings.Join(want, " ") {
		t.Errorf("connect = %q, want %q", o.connect, want)
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want []string // every one must be in the error
	}{
		{nil, []string{"-connect: at least one"}},
		{[]string{"-connect", "http://x:1", "-connect", "opc.tcp://:1"}, []string{`"http://x:1"`, `"opc.tcp://:1"`}},
		{append(good, "-server-uri", ""), []string{"-server-uri"}},
		{append(good, "-endpoint-url", "http://x"), []string{"-endpoint-url"}},
		{append(good, "-nodes", "-1", "-interval", "0s"), []string{"-nodes -1", "-interval 0s"}},
		{append(good, "-backoff-min", "2s", "-backoff-max", "1s"), []string{"-backoff-min 2s"}},
		{append(good, "-log-level", "loud", "-log-format", "xml"), []string{`-log-level "loud"`, `-log-format "xml"`}},
		{append(good, "extra"), []string{"unexpected arguments"}},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tc.args, err, w)
			}
		}
	}
	var stderr bytes.Buffer
	if code := cli(context.Background(), []string{"-nodes", "x"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "-nodes") {
		t.Errorf("cli with a bad flag: exit %d, %q", code, stderr.String())
	}
}

func TestBackoff(t *testing.T) {
	d := 100 * time.Millisecond
	var got []time.Duration
	for range 6 {
		got = append(got, d)
		d = nextBackoff(d, time.Second)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff sequence %v, want %v ms", got, want)
		}
	}
	for range 1000 {
		if j := jitter(time.Second); j < 800*time.Millisecond || j > 1200*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", j)
		}
	}
}

// TestPlantTick checks the model without a server: concurrent reads while
// it ticks are race-free and the temperature settles on the set point.
func TestPlantTick(t *testing.T) {
	p := newPlant(3, time.Now())
	p.counterIDs = []*ua.NodeID{ua.NewStringNodeID(1, "a"), ua.NewStringNodeID(1, "b"), ua.NewStringNodeID(1, "c")}
	p.sineID, p.temperatureID = ua.NewStringNodeID(1, "s"), ua.NewStringNodeID(1, "t")
	read := p.reader(&p.temperature, &p.ticked)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 100 {
			_ = read()
		}
	})
	if st := p.writeSetPoint(ua.MustVariant(30.0)); st != ua.StatusOK {
		t.Fatal(st)
	}
	now := time.Now()
	var last []*ua.NodeID
	for i := range 200 {
		last = p.tick(now.Add(time.Duration(i) * time.Second))
	}
	wg.Wait()
	if p.temperature != 30 || len(last) != 4 { // settled: no Temperature change any more
		t.Errorf("after 200 ticks: temperature %v, %d changes per tick", p.temperature, len(last))
	}
	if p.counters[0] != 200 || p.counters[2] != 600 {
		t.Errorf("counters %v", p.counters)
	}
}
