package rctest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadProcessEnv marks a process started by StartLoadProcess; its value is
// the LoadOptions as JSON.
const loadProcessEnv = "RCTEST_LOAD_PROCESS"

// IsLoadProcess reports whether this process was started by
// StartLoadProcess. A TestMain that supports StartLoadProcess checks it
// first and then runs ServeLoadProcess instead of the tests:
//
//	func TestMain(m *testing.M) {
//		if rctest.IsLoadProcess() {
//			os.Exit(rctest.ServeLoadProcess(os.Stdin, os.Stdout))
//		}
//		…
//	}
func IsLoadProcess() bool { return os.Getenv(loadProcessEnv) != "" }

// ServeLoadProcess runs load servers for the process that started this one
// with StartLoadProcess. It reads commands from in, one a line, and answers
// each on out with "ok" or "error <text>":
//
//	dial <server URI> <address>
//	pause
//	resume
//
// dial starts a LoadServer with that ServerUri (other options from the
// environment) dialing address with a ReverseHello; pause and resume
// apply LoadServer.Pause to every server. At the end of in (the
// parent closed it or died) it closes every server and returns the exit
// code: 0, or 2 when the options in the environment are invalid.
func ServeLoadProcess(in io.Reader, out io.Writer) int {
	var opts LoadOptions
	if err := json.Unmarshal([]byte(os.Getenv(loadProcessEnv)), &opts); err != nil {
		fmt.Fprintf(out, "error rctest: load process options: %v\n", err)
		return 2
	}
	var servers []*LoadServer
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 1 && (f[0] == "pause" || f[0] == "resume") {
			for _, s := range servers {
				s.Pause(f[0] == "pause")
			}
			fmt.Fprintln(out, "ok")
			continue
		}
		if len(f) != 3 || f[0] != "dial" {
			fmt.Fprintf(out, "error rctest: unknown command %q\n", sc.Text())
			continue
		}
		o := opts
		o.ServerURI = f[1]
		s := NewLoadServer(o)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.Dial(ctx, f[2])
		cancel()
		if err != nil {
			fmt.Fprintf(out, "error %v\n", err)
			continue
		}
		servers = append(servers, s)
		fmt.Fprintln(out, "ok")
	}
	return 0
}

// LoadProcess is a child process running load servers (see
// StartLoadProcess), so that a benchmark measures the client's CPU time
// without the server's.
type LoadProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader

	mu     sync.Mutex // one command at a time
	closed bool
	waited chan error
}

// StartLoadProcess starts the test binary again as a load process with
// opts (ServerURI is given per Dial); env adds environment variables. The
// package's TestMain must run ServeLoadProcess when IsLoadProcess (see
// there), or anything else it wants to do in the child first: the lines it
// prints before serving can be read with ReadLine. The process ends at
// cleanup, or when this process dies (its stdin closes).
func StartLoadProcess(tb testing.TB, opts LoadOptions, env ...string) *LoadProcess {
	tb.Helper()
	o, err := json.Marshal(opts)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(append(os.Environ(), loadProcessEnv+"="+string(o)), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("rctest: load process: %v", err)
	}
	p := &LoadProcess{cmd: cmd, in: in, out: bufio.NewReader(out), waited: make(chan error, 1)}
	go func() { p.waited <- cmd.Wait() }()
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("rctest: load process: %v", err)
		}
	})
	return p
}

// ReadLine returns the next line the process printed, without the newline.
func (p *LoadProcess) ReadLine() (string, error) {
	line, err := p.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("rctest: load process output: %w", err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// Pause pauses (true) or resumes (false) the load of every server of the
// process: see LoadServer.Pause.
func (p *LoadProcess) Pause(on bool) error {
	cmd := "resume"
	if on {
		cmd = "pause"
	}
	return p.command(cmd)
}

// Dial makes the process dial addr with a new load server announcing
// serverURI, and returns once the ReverseHello is sent (or failed). The
// caller accepts the connection concurrently.
func (p *LoadProcess) Dial(serverURI, addr string) error {
	if strings.ContainsAny(serverURI, " \n") {
		return fmt.Errorf("rctest: server URI %q has white space", serverURI)
	}
	return p.command("dial " + serverURI + " " + addr)
}

// command sends one command and reads its answer.
func (p *LoadProcess) command(cmd string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("rctest: load process closed")
	}
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		return fmt.Errorf("rctest: load process: %w", err)
	}
	line, err := p.ReadLine()
	if err != nil {
		return err
	}
	if line != "ok" {
		return fmt.Errorf("rctest: load process %q: %s", cmd, strings.TrimPrefix(line, "error "))
	}
	return nil
}

// Close ends the process: its servers close their connections and it
// exits. After 10 s it is killed.
func (p *LoadProcess) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	_ = p.in.Close()
	select {
	case err := <-p.waited:
		return err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waited
		return errors.New("did not exit within 10 s of its input closing; killed")
	}
}
