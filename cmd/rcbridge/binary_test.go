package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// proc is a started executable whose stderr is collected line by line.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	log   *syncBuffer
	done  chan error
}

func startProc(t testing.TB, dir, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1024), log: &syncBuffer{}, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = p.log.Write([]byte(sc.Text() + "\n"))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLine returns the first JSON log line whose msg is msg.
func (p *proc) waitLine(t testing.TB, msg string) map[string]any {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("exited before logging %q:\n%s", msg, p.log.String())
			}
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q in the log:\n%s", msg, p.log.String())
		}
	}
}

// stop sends SIGTERM and returns the exit error and how long the exit took.
func (p *proc) stop(t testing.TB, within time.Duration) (error, time.Duration) {
	t.Helper()
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range p.lines { // drain until stderr closes
	}
	select {
	case err := <-p.done:
		return err, time.Since(began)
	case <-time.After(within):
		t.Fatalf("no exit within %s:\n%s", within, p.log.String())
	}
	return nil, 0
}

// TestBinary runs the real rcbridge with the embedded bus and a real rcsim
// dialing it: the simulator's values and presence arrive on the bus, a
// write goes back to it, and both stop cleanly on SIGTERM, rcbridge within
// its shutdown deadline and saying the server went offline.
func TestBinary(t *testing.T) {
	bridge, sim := binaries.path(t, "./cmd/rcbridge"), binaries.path(t, "./cmd/rcsim")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", testConfig(dir)+`
[[map]]
servers = "urn:test:line1"
node = "nsu=urn:rcbridge:sim;s=SetPoint"
name = "setpoint"
writable = true

[log]
format = "json"
`)
	b := startProc(t, dir, bridge, "-config", cfg, "-shutdown-timeout", "5s")
	running := b.waitLine(t, "rcbridge running")
	listener, _ := running["listener"].(string)
	httpAddr, _ := running["http"].(string)
	busURL, _ := running["bus_url"].(string)
	if listener == "" || httpAddr == "" || busURL == "" {
		t.Fatalf("running line without addresses: %v", running)
	}
	nc, err := nats.Connect(busURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := record(t, nc, "rcbridge.>")
	for _, f := range []string{generatedCertificate, generatedKey} {
		if _, err := os.Stat(filepath.Join(dir, "pki", f)); err != nil {
			t.Errorf("generated certificate: %v", err)
		}
	}

	s := startProc(t, dir, sim, "-connect", "opc.tcp://"+listener, "-server-uri", "urn:test:line1", "-log-format", "json", "-backoff-min", "50ms")
	s.waitLine(t, "reverse connected")
	base := "http://" + httpAddr
	waitFor(t, "the admission", func() bool {
		return metric(t, base, `rcbridge_admissions_total{outcome="accepted"}`) != "0"
	})
	msgs.await(t, "rcbridge.status.line1", `"state":"online"`)
	msgs.await(t, "rcbridge.line1.counter1", `"type":"Int32"`)
	msgs.await(t, "rcbridge.line1.setpoint", `"value":20`)
	reply, err := nc.Request("rcbridge.line1.setpoint.set", []byte(`{"id":"t-1","value":55.5}`), 10*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), `"ok":true`) || !strings.Contains(string(reply.Data), `"id":"t-1"`) {
		t.Fatalf("set point command: %v %s", err, replyData(reply))
	}
	msgs.await(t, "rcbridge.line1.setpoint", `"value":55.5`)
	reply, err = nc.Request("rcbridge.line1.setpoint.set", []byte(`{"id":"t-2","value":500}`), 10*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), `"ok":false`) || !strings.Contains(string(reply.Data), "BadOutOfRange") {
		t.Errorf("out-of-range set point: %v %s", err, replyData(reply))
	}
	reply, err = nc.Request("rcbridge.line1.setpiont.set", []byte(`{"id":"t-3","value":5}`), 10*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), `"id":"t-3"`) || !strings.Contains(string(reply.Data), "BadNodeIdUnknown") ||
		!strings.Contains(string(reply.Data), "no such command route") {
		t.Errorf("command on an unknown route: %v %s", err, replyData(reply))
	}
	if got := metric(t, base, `rcbridge_commands_total{outcome="unrouted"}`); got != "1" {
		t.Errorf(`rcbridge_commands_total{outcome="unrouted"} = %s, want 1`, got)
	}
	if line1 := servers(t, base)["urn:test:line1"]; line1.LastAdmission == nil || line1.State != stateOnline {
		t.Errorf("line1: %+v", line1)
	}

	err, took := b.stop(t, 10*time.Second)
	if err != nil || took > 5*time.Second {
		t.Errorf("rcbridge after SIGTERM: %v after %s\n%s", err, took, b.log.String())
	}
	if !strings.Contains(b.log.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", b.log.String())
	}
	msgs.await(t, "rcbridge.status.line1", `"state":"offline"`)
	if err, _ := s.stop(t, 10*time.Second); err != nil {
		t.Errorf("rcsim after SIGTERM: %v\n%s", err, s.log.String())
	}
}

func replyData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}
