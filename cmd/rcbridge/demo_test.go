package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDemo runs scripts/demo.sh (what make demo runs) for a few seconds on
// free ports: both simulators' values stream through the bridge onto the
// bus, the set point command is answered and the new value published, and
// every process it started is stopped.
func TestDemo(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the demo builds with go, which is not on PATH")
	}
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(),
		"GO="+goCmd,
		"DEMO_SECONDS=2",
		"TMPDIR="+t.TempDir(),
		"RCBRIDGE_LISTENER_ADDRESS="+freeAddr(t),
		"RCBRIDGE_HTTP_ADDRESS="+freeAddr(t),
		"RCBRIDGE_BUS_EMBEDDED_ADDRESS="+freeAddr(t),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"starting rcsim urn:rcbridge:demo:line1",
		"starting rcsim urn:rcbridge:demo:line2",
		`rcbridge tail: listening on "rcbridge.>"`,
		`rcbridge.line1.setpoint.set {"id":"demo-1","value":42.5}`,                               // tail shows the command going out
		`rcbridge.line1.setpoint.set {"id":"demo-1","ok":true,"status":{"code":0,"name":"Good"}`, // the reply
		" rcbridge.line1.setpoint 42.5 Double Good\n",                                            // the new value on the bus
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	for _, line := range []string{"line1", "line2"} {
		if !regexp.MustCompile(` rcbridge\.` + line + `\.counter1 [0-9]+ Int32 Good\n`).MatchString(text) {
			t.Errorf("no counter1 values of %s in the demo output:\n%s", line, text)
		}
	}
	m := regexp.MustCompile(`stopped: ([0-9 ]+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no list of stopped processes:\n%s", text)
	}
	pids := strings.Fields(m[1])
	if len(pids) != 4 {
		t.Errorf("stopped %v, want rcbridge, two rcsim and tail", pids)
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs after the demo", pid)
		}
	}
}
