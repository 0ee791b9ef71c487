package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// testConfig is a configuration on free loopback ports with the embedded
// bus, its files under dir.
func testConfig(dir string) string {
	return fmt.Sprintf(`
[listener]
address = "127.0.0.1:0"
hold_time = "1s"

[[servers]]
uri = "urn:test:line1"
key = "line1"
security_policy = "None"
security_mode = "None"

[[servers]]
uri = "urn:test:press"
security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"

[client]
certificate_dir = %[1]q
trust_dir = %[2]q
session_timeout = "2s"           # how long a dropped session may be resumed

[bus]
kind = "embedded"

[bus.embedded]
address = "127.0.0.1:0"
data_dir = %[3]q

[[map]]
servers = "urn:test:*"
node = "nsu=urn:rcbridge:sim;s=Counter1"
name = "counter1"

[http]
address = "127.0.0.1:0"
`, filepath.Join(dir, "pki"), filepath.Join(dir, "trusted"), filepath.Join(dir, "nats"))
}

// daemonRun is an in-process daemon.
type daemonRun struct {
	addrs addrs
	stop  func() error // cancels and waits for run's result
}

func startDaemon(t *testing.T, toml string) *daemonRun {
	t.Helper()
	return startDaemonTimeout(t, toml, 10*time.Second)
}

func startDaemonTimeout(t *testing.T, toml string, shutdown time.Duration) *daemonRun {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load(writeFile(t, dir, "c.toml", toml), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, runOptions{
			log:             slog.New(slog.DiscardHandler),
			lookupEnv:       func(string) (string, bool) { return "", false },
			shutdownTimeout: shutdown,
			version:         "test",
			started:         func(a addrs) { started <- a },
		})
	}()
	var a addrs
	select {
	case a = <-started:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start")
	}
	var once bool
	d := &daemonRun{addrs: a, stop: func() error {
		if once {
			return nil
		}
		once = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return fmt.Errorf("run did not return")
		}
	}}
	t.Cleanup(func() {
		if err := d.stop(); err != nil && !errors.Is(err, errForcedShutdown) {
			t.Errorf("stop: %v", err)
		}
	})
	return d
}

// recorder keeps every message of a NATS subscription.
type recorder struct {
	mu     sync.Mutex
	msgs   []*nats.Msg
	cursor map[string]int // per subject: where the next await starts
}

// record subscribes to subject on nc.
func record(t *testing.T, nc *nats.Conn, subject string) *recorder {
	t.Helper()
	r := &recorder{cursor: map[string]int{}}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

// await waits for a message on subject containing want, after the one the
// previous await on that subject found: successive awaits check order.
func (r *recorder) await(t *testing.T, subject, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r.mu.Lock()
		for i := r.cursor[subject]; i < len(r.msgs); i++ {
			if m := r.msgs[i]; m.Subject == subject && strings.Contains(string(m.Data), want) {
				r.cursor[subject] = i + 1
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no message on %s containing %s", subject, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t testing.TB, url string) (int, string, http.Header) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

func servers(t testing.TB, base string) map[string]serverView {
	t.Helper()
	code, body, _ := get(t, base+"/api/v1/servers")
	if code != http.StatusOK {
		t.Fatalf("/api/v1/servers: %d %s", code, body)
	}
	var res serversResponse
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	out := map[string]serverView{}
	for _, s := range res.Servers {
		out[s.URI] = s
	}
	return out
}

// metric returns the value of one sample line of /metrics.
func metric(t *testing.T, base, series string) string {
	t.Helper()
	_, body, _ := get(t, base+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s:\n%s", series, body)
	return ""
}

// TestDaemonHTTP checks the documented content of every endpoint, with
// reverse connections arriving from a test server.
func TestDaemonHTTP(t *testing.T) {
	d := startDaemon(t, testConfig(t.TempDir()))
	base := "http://" + d.addrs.HTTP

	code, body, _ := get(t, base+"/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body, hdr := get(t, base+"/readyz")
	var ready readyResponse
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != http.StatusOK || !ready.Ready ||
		hdr.Get("Content-Type") != "application/json" ||
		ready.Checks["listener"] != "ok" || ready.Checks["bus"] != "ok" || ready.Checks["embedded_nats"] != "ok" {
		t.Errorf("/readyz = %d %s (%v)", code, body, err)
	}
	if res, err := http.Post(base+"/metrics", "text/plain", nil); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
	if code, _, _ := get(t, base+"/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing = %d", code)
	}
	if code, _, _ := get(t, base+"/debug/pprof/heap"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/heap without [http] pprof = %d, want 404", code)
	}

	before := time.Now()
	s := servers(t, base)
	line1, press := s["urn:test:line1"], s["urn:test:press"]
	if len(s) != 2 || line1.Key != "line1" || line1.State != stateOffline || line1.Security != (security{"None", "None"}) ||
		press.Security != (security{"Basic256Sha256", "SignAndEncrypt"}) || press.Key == "" || line1.LastAdmission != nil {
		t.Errorf("servers before any connection: %+v", s)
	}
	if v := metric(t, base, `rcbridge_sessions{state="offline"}`); v != "2" {
		t.Errorf("sessions offline = %s, want 2", v)
	}
	if v := metric(t, base, `rcbridge_build_info{version="test"}`); v != "1" {
		t.Errorf("build_info = %s", v)
	}

	// An allowed server is admitted, gets its session and publishes; an
	// unknown one is refused; a configured one with a bad EndpointUrl
	// too, which the registry notes.
	nc, err := nats.Connect(d.addrs.Bus)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := record(t, nc, "rcbridge.>")
	srv, err := rctest.NewServer(rctest.Options{ServerURI: "urn:test:line1", EndpointURL: "opc.tcp://plc.invalid:4840", NamespaceURI: "urn:rcbridge:sim"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddVariable("Counter1", int32(42), false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.Dial(ctx, d.addrs.Listener); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "line1 online", func() bool { return servers(t, base)["urn:test:line1"].State == stateOnline })
	line1 = servers(t, base)["urn:test:line1"]
	if line1.LastAdmission == nil || line1.LastAdmission.Before(before) || !strings.HasPrefix(line1.RemoteAddress, "127.0.0.1:") ||
		line1.EndpointURL != "opc.tcp://plc.invalid:4840" || line1.Items != 1 || !line1.Since.After(before) {
		t.Errorf("line1 online: %+v", line1)
	}
	for series, want := range map[string]string{
		`rcbridge_admissions_total{outcome="accepted"}`: "1",
		`rcbridge_sessions{state="online"}`:             "1",
		`rcbridge_sessions{state="offline"}`:            "1",
		`rcbridge_sessions_total`:                       "1",
		`rcbridge_client_events_total{event="active"}`:  "1",
	} {
		if v := metric(t, base, series); v != want {
			t.Errorf("%s = %s, want %s", series, v, want)
		}
	}
	msgs.await(t, "rcbridge.status.line1", `"state":"online"`)
	msgs.await(t, "rcbridge.line1.counter1", `"value":42`)
	waitFor(t, "the notification counted", func() bool {
		return metric(t, base, "rcbridge_notifications_total") != "0" && servers(t, base)["urn:test:line1"].Notifications > 0
	})

	// The server goes away: resuming, then offline after the session
	// timeout; the resume histogram records how long it was resuming.
	srv.Close()
	msgs.await(t, "rcbridge.status.line1", `"state":"resuming"`)
	msgs.await(t, "rcbridge.status.line1", `"state":"offline"`)
	waitFor(t, "line1 offline", func() bool { return servers(t, base)["urn:test:line1"].State == stateOffline })
	if v := metric(t, base, `rcbridge_resume_seconds_count{end="offline"}`); v != "1" {
		t.Errorf("resume_seconds_count{end=offline} = %s, want 1", v)
	}
	// The client saw the drop, and was closed when the bridge gave up.
	for _, series := range []string{`rcbridge_client_events_total{event="disconnected"}`, `rcbridge_client_events_total{event="closed"}`} {
		waitFor(t, series, func() bool { return metric(t, base, series) == "1" })
	}

	for _, h := range []rc.Hello{
		{ServerURI: "urn:test:unknown", EndpointURL: "opc.tcp://x:1"},
		{ServerURI: "urn:test:press", EndpointURL: "http://press:80"},
	} {
		c, err := rctest.DialHello(ctx, d.addrs.Listener, h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, c) // until the ERR frame and close
		c.Close()
	}
	waitFor(t, "two rejections", func() bool {
		return metric(t, base, `rcbridge_admissions_total{outcome="rejected"}`) == "2"
	})
	press = servers(t, base)["urn:test:press"]
	if !strings.Contains(press.LastError, "EndpointUrl") || press.LastErrorAt == nil {
		t.Errorf("press last_error = %q at %v", press.LastError, press.LastErrorAt)
	}
	if _, ok := servers(t, base)["urn:test:unknown"]; ok {
		t.Error("an unknown server appears in /api/v1/servers")
	}

	// press is admitted but offers no Basic256Sha256 endpoint: its session
	// setup fails, and the registry says why.
	pressSrv, err := rctest.NewServer(rctest.Options{ServerURI: "urn:test:press", EndpointURL: "opc.tcp://press.invalid:4840"})
	if err != nil {
		t.Fatal(err)
	}
	defer pressSrv.Close()
	if _, err := pressSrv.Dial(ctx, d.addrs.Listener); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "press's setup failure in last_error", func() bool {
		p := servers(t, base)["urn:test:press"]
		return p.LastErrorAt != nil && p.LastErrorAt.After(press.LastErrorAt.Add(-time.Nanosecond)) && !strings.Contains(p.LastError, "EndpointUrl")
	})
	if p := servers(t, base)["urn:test:press"]; !strings.Contains(p.LastError, "Basic256Sha256") || p.State != stateOffline {
		t.Errorf("press after a failed setup: state %s, last_error %q", p.State, p.LastError)
	}

	if err := d.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("HTTP still answers after shutdown")
	}
}

// TestDaemonTailRequest runs tail and request against the daemon's
// embedded NATS server.
func TestDaemonTailRequest(t *testing.T) {
	dir := t.TempDir()
	toml := testConfig(dir)
	d := startDaemon(t, toml)
	nc, err := nats.Connect(d.addrs.Bus)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// The clients read the bus address from the configuration: give them
	// the port the embedded server got.
	_, port, _ := strings.Cut(strings.TrimPrefix(d.addrs.Bus, "nats://"), ":")
	clientCfg := writeFile(t, dir, "client.toml", strings.Replace(toml, `[bus.embedded]
address = "127.0.0.1:0"`, `[bus.embedded]
address = "127.0.0.1:`+port+`"`, 1))
	env := []string{"RCBRIDGE_CONFIG=" + clientCfg}

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	tailDone := make(chan int, 1)
	go func() { tailDone <- cli(ctx, []string{"tail"}, &stdout, &stderr, env) }()
	waitFor(t, "tail to subscribe", func() bool { return strings.Contains(stderr.String(), `listening on "rcbridge.>"`) })
	if err := nc.Publish("rcbridge.line1.counter1", []byte(`{ "value": 7,
		"type": "Int32" }`)); err != nil {
		t.Fatal(err)
	}
	_ = nc.Publish("elsewhere.x", []byte("not shown"))
	_ = nc.Publish("rcbridge.bin", []byte{0xff, 0x00})
	waitFor(t, "tail to print", func() bool { return strings.Contains(stdout.String(), " rcbridge.bin ") })
	cancel()
	if code := <-tailDone; code != exitOK {
		t.Errorf("tail exit %d: %s", code, stderr.String())
	}
	var ls []string // the test's own messages; the bridge publishes presence meanwhile
	for _, l := range lines(stdout.String()) {
		if !strings.Contains(l, " rcbridge.status.") {
			ls = append(ls, l)
		}
	}
	if len(ls) != 2 || !strings.HasSuffix(ls[0], ` rcbridge.line1.counter1 {"value":7,"type":"Int32"}`) ||
		!strings.HasSuffix(ls[1], ` rcbridge.bin "\xff\x00"`) {
		t.Errorf("tail printed:\n%s", stdout.String())
	}

	// A responder of its own, outside the prefix: the bridge answers
	// commands in the shape of its command subjects under "rcbridge".
	sub, err := nc.Subscribe("tool.line1.setpoint.set", func(m *nats.Msg) {
		var req struct {
			ID    string  `json:"id"`
			Value float64 `json:"value"`
		}
		_ = json.Unmarshal(m.Data, &req)
		_ = m.Respond(fmt.Appendf(nil, `{"id":%q,"ok":%t}`, req.ID, req.Value <= 100))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = nc.Flush()
	code, out, errOut := runCLI(t, context.Background(), env, "request", "tool.line1.setpoint.set", `{"id":"c-1","value":42.5}`)
	if code != exitOK || !strings.Contains(out, `tool.line1.setpoint.set {"id":"c-1","ok":true}`) {
		t.Errorf("request: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := runCLI(t, context.Background(), env, "request", "tool.line1.setpoint.set", `{"value":420}`); code != exitFailure || !strings.Contains(out, `"ok":false`) {
		t.Errorf("request answered ok:false: exit %d, %q", code, out)
	}
	if code, _, errOut := runCLI(t, context.Background(), env, "request", "-timeout", "200ms", "rcbridge.nobody", `{}`); code != exitFailure || !strings.Contains(errOut, "no responders") {
		t.Errorf("request without responder: exit %d, %q", code, errOut)
	}
}

// TestDaemonForcedShutdown: a part that does not finish within the
// shutdown deadline (here an HTTP request whose headers never end) is
// closed forcefully, and run says so.
func TestDaemonForcedShutdown(t *testing.T) {
	d := startDaemonTimeout(t, testConfig(t.TempDir()), 300*time.Millisecond)
	c, err := net.Dial("tcp", d.addrs.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server reads the first bytes: the connection is active
	if err := d.stop(); !errors.Is(err, errForcedShutdown) {
		t.Fatalf("stop = %v, want %v", err, errForcedShutdown)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the stuck connection is still open")
	}
}
