package nodeua

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Timeouts of the control channel.
const (
	commandTimeout = 15 * time.Second
	stopTimeout    = 10 * time.Second
	logLimit       = 1 << 20 // bytes of server log kept for the failure report
)

// Server is one running node-opcua test server, owned by a test. Its methods
// are safe for concurrent use. Start registers a cleanup that stops it.
type Server struct {
	t      testing.TB
	cfg    Config
	node   string // node binary
	dir    string // integration/opcua-server
	runDir string // config file and certificate inputs
	logs   *tailBuffer

	mu     sync.Mutex
	proc   *process // nil when stopped
	ready  readyInfo
	paused bool
}

// readyInfo is the server's ready line.
type readyInfo struct {
	PID            int    `json:"pid"`
	Port           int    `json:"port"`
	EndpointURL    string `json:"endpointUrl"`
	ApplicationURI string `json:"applicationUri"`
	NamespaceURI   string `json:"namespaceUri"`
	NamespaceIndex uint16 `json:"namespaceIndex"`
	CertFile       string `json:"certFile"`
	CertDERFile    string `json:"certDerFile"`
	PKIDir         string `json:"pkiDir"`
	StartupMS      int64  `json:"startupMs"`
}

// message is any line the server prints on stdout.
type message struct {
	Event string  `json:"event"`
	ID    *uint64 `json:"id"`
	OK    bool    `json:"ok"`
	Error string  `json:"error"`

	readyInfo

	Variant       string `json:"variant"`
	Text          string `json:"text"`
	Sessions      int    `json:"sessions"`
	Channels      int    `json:"channels"`
	Subscriptions int    `json:"subscriptions"`
	Dropped       int    `json:"dropped"`
}

// Stats are the server's live counters.
type Stats struct {
	Sessions      int // sessions currently open
	Channels      int // secure channels currently open
	Subscriptions int // subscriptions of all sessions
}

// Start starts a test server and waits until it listens (and, with
// ReverseConnect, has made its first dial). It fails the test — never skips
// it — when Node.js or the npm packages are missing or the server does not
// come up within Config.StartTimeout. The server is stopped when the test
// ends; its log is added to the test output when the test failed.
//
// Node.js is looked up as $RCBRIDGE_NODE, else "node" in $PATH. The script
// and its node_modules are found in integration/opcua-server of this
// repository (`make npm-deps` installs them).
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatalf("nodeua.Start: %v", err)
	}
	node, dir, err := locate()
	if err != nil {
		t.Fatalf("nodeua.Start: %v", err)
	}
	s := &Server{t: t, cfg: cfg, node: node, dir: dir, runDir: t.TempDir(), logs: &tailBuffer{limit: logLimit}}
	if s.cfg.PKIDir == "" {
		s.cfg.PKIDir = filepath.Join(s.runDir, "pki")
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("node-opcua test server log (%s):\n%s", s.cfg.ApplicationURI, s.logs.String())
		}
	})
	if err := s.start(s.cfg.Port); err != nil {
		t.Fatalf("nodeua.Start: %v\nserver log:\n%s", err, s.logs.String())
	}
	return s
}

// locate finds the node binary and the server script's directory.
func locate() (node, dir string, err error) {
	node = os.Getenv("RCBRIDGE_NODE")
	if node == "" {
		if node, err = exec.LookPath("node"); err != nil {
			return "", "", fmt.Errorf("Node.js not found in PATH (install Node.js ≥ 20 or set RCBRIDGE_NODE): %w", err)
		}
	}
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "opcua-server"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, filepath.Join(d, "integration", "opcua-server"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "server.mjs")); err == nil {
			dir = c
			break
		}
	}
	if dir == "" {
		return "", "", fmt.Errorf("integration/opcua-server/server.mjs not found (looked in %q)", candidates)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua", "package.json")); err != nil {
		return "", "", fmt.Errorf("node-opcua is not installed in %s: run `make npm-deps` (npm ci) first", dir)
	}
	return node, dir, nil
}

// jsonConfig renders the server's JSON configuration, writing certificate
// inputs into the run directory.
func (s *Server) jsonConfig(port int) (serverConfig, error) {
	c := s.cfg
	sc := serverConfig{
		ApplicationURI:            or(c.ApplicationURI, DefaultApplicationURI),
		ApplicationName:           or(c.ApplicationName, DefaultApplicationName),
		Port:                      port,
		Host:                      "127.0.0.1",
		Hostname:                  or(c.Hostname, DefaultHostname),
		PKIDir:                    c.PKIDir,
		NamespaceURI:              or(c.NamespaceURI, DefaultNamespaceURI),
		SecurityPolicies:          c.SecurityPolicies,
		SecurityModes:             c.SecurityModes,
		AutoAcceptClientCerts:     !c.RejectUnknownClientCerts,
		TrustedClientCerts:        []string{},
		AllowAnonymous:            !c.DisableAnonymous,
		AnonymousWrite:            !c.AnonymousReadOnly,
		Users:                     []userJSON{},
		X509Users:                 []x509UserJSON{},
		CounterIntervalMS:         ms(or(c.CounterInterval, DefaultCounterInterval)),
		CounterStart:              c.CounterStart,
		MinSampleRateMS:           ms(c.MinSampleRate),
		GeneratedNodes:            c.GeneratedNodes,
		OperationLimits:           c.OperationLimits,
		Capabilities:              c.Capabilities,
		MaxConnectionsPerEndpoint: or(c.MaxChannels, 100),
		CertApplicationURI:        c.CertApplicationURI,
		AllowAnonymousTransfer:    c.AllowAnonymousTransferOnNone,
	}
	if c.CounterInterval < 0 {
		sc.CounterIntervalMS = 0
	}
	if rc := c.ReverseConnect; rc != nil {
		sc.ReverseConnect = &reverseJSON{
			Clients:             rc.ClientURLs,
			ReconnectDelayMS:    or(rc.ReconnectDelay, DefaultReconnectDelay).Milliseconds(),
			MaxReconnectDelayMS: or(rc.MaxReconnectDelay, DefaultMaxReconnectDelay).Milliseconds(),
			ConnectionTimeoutMS: or(rc.ConnectionTimeout, DefaultConnectionTimeout).Milliseconds(),
		}
	}
	users := c.Users
	if users == nil {
		users = DefaultUsers()
	}
	for _, u := range users {
		sc.Users = append(sc.Users, userJSON(u))
	}
	for i, der := range c.TrustedClientCerts {
		file := filepath.Join(s.runDir, "client-"+strconv.Itoa(i)+".der")
		if err := os.WriteFile(file, der, 0o600); err != nil {
			return sc, err
		}
		sc.TrustedClientCerts = append(sc.TrustedClientCerts, file)
	}
	for i, u := range c.X509Users {
		file := filepath.Join(s.runDir, "user-"+strconv.Itoa(i)+".der")
		if err := os.WriteFile(file, u.Certificate, 0o600); err != nil {
			return sc, err
		}
		cn, err := commonName(u.Certificate)
		if err != nil {
			return sc, err
		}
		sc.X509Users = append(sc.X509Users, x509UserJSON{CertFile: file, CommonName: cn, Role: u.Role})
	}
	return sc, nil
}

// start launches a process on port and waits for its ready line.
func (s *Server) start(port int) error {
	sc, err := s.jsonConfig(port)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return err
	}
	cfgFile := filepath.Join(s.runDir, "config.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return err
	}
	p, err := launch(s.node, s.dir, cfgFile, s.logs)
	if err != nil {
		return err
	}
	timeout := or(s.cfg.StartTimeout, DefaultStartTimeout)
	select {
	case r := <-p.ready:
		s.mu.Lock()
		s.proc, s.ready, s.paused = p, r, false
		s.mu.Unlock()
		return nil
	case <-p.exited:
		return fmt.Errorf("server exited before it was ready: %v", p.waitErr)
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("server not ready within %v", timeout)
	}
}

// current returns the running process or ErrNotRunning.
func (s *Server) current() (*process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil, ErrNotRunning
	}
	select {
	case <-s.proc.exited:
		return nil, fmt.Errorf("%w: exited: %v", ErrNotRunning, s.proc.waitErr)
	default:
		return s.proc, nil
	}
}

// detach takes the process out of the server, continuing it if paused.
func (s *Server) detach() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	if p != nil && s.paused {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
	return p
}

// Stop shuts the server down cleanly (sessions closed, sockets closed),
// killing it after a deadline. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	p := s.detach()
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_, _ = p.command(ctx, map[string]any{"cmd": "shutdown"})
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-ctx.Done():
		s.logs.Write([]byte("nodeua: server did not stop in time, killing it\n"))
		p.kill()
	}
}

// Kill ends the server abruptly (SIGKILL), as a crash or power loss would:
// no session is closed and its sockets are reset by the kernel.
func (s *Server) Kill() {
	if p := s.detach(); p != nil {
		p.kill()
	}
}

// Restart stops the server (if running) and starts a new process on the
// same port with the same PKI directory and certificate. Sessions and
// subscriptions of the old process are gone; the Counter and every value
// start over.
func (s *Server) Restart() error {
	s.Stop()
	s.mu.Lock()
	port := s.ready.Port
	s.mu.Unlock()
	return s.start(port)
}

// Pause stops the server process (SIGSTOP) without closing anything: its
// sockets stay open but nothing is answered, like a hung device.
func (s *Server) Pause() error {
	p, err := s.current()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
	return p.cmd.Process.Signal(syscall.SIGSTOP)
}

// Continue resumes a paused server (SIGCONT).
func (s *Server) Continue() error {
	p, err := s.current()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	return p.cmd.Process.Signal(syscall.SIGCONT)
}

// Read returns the current value of a node, read inside the server (not
// through OPC UA). name is a node name of this package ("Types.Int32") or a
// full NodeId string ("ns=0;i=2258").
func (s *Server) Read(name string) (*ua.Variant, error) {
	m, err := s.do(map[string]any{"cmd": "read", "node": name})
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(m.Variant)
	if err != nil {
		return nil, fmt.Errorf("nodeua: read %q: %w", name, err)
	}
	v := new(ua.Variant)
	if _, err := v.Decode(b); err != nil {
		return nil, fmt.Errorf("nodeua: read %q: decoding %q: %w", name, m.Text, err)
	}
	return v, nil
}

// Set sets the value of a node inside the server, bypassing access rights
// (read-only nodes and the Counter can be set too). value is a *ua.Variant
// or anything ua.NewVariant accepts; its type must match the node's.
func (s *Server) Set(name string, value any) error {
	v, ok := value.(*ua.Variant)
	if !ok {
		var err error
		if v, err = ua.NewVariant(value); err != nil {
			return fmt.Errorf("nodeua: set %q: %w", name, err)
		}
	}
	b, err := v.Encode()
	if err != nil {
		return fmt.Errorf("nodeua: set %q: %w", name, err)
	}
	_, err = s.do(map[string]any{"cmd": "set", "node": name, "variant": base64.StdEncoding.EncodeToString(b)})
	return err
}

// RaiseEvent raises a BaseEventType event with message and severity
// (1..1000) from the Server object (i=2253): clients monitoring its
// EventNotifier attribute receive it.
func (s *Server) RaiseEvent(message string, severity uint16) error {
	_, err := s.do(map[string]any{"cmd": "raiseEvent", "message": message, "severity": severity})
	return err
}

// Stats returns the server's live session, channel and subscription counts.
func (s *Server) Stats() (Stats, error) {
	m, err := s.do(map[string]any{"cmd": "stats"})
	if err != nil {
		return Stats{}, err
	}
	return Stats{Sessions: m.Sessions, Channels: m.Channels, Subscriptions: m.Subscriptions}, nil
}

// TrustClientCert adds a client application certificate (DER) to the
// running server's trusted store.
func (s *Server) TrustClientCert(der []byte) error {
	_, err := s.do(map[string]any{"cmd": "trustClientCert", "der": base64.StdEncoding.EncodeToString(der)})
	return err
}

// DropConnections closes the socket of every secure channel, forward and
// reverse, from the server's side (FIN, then destroy) without closing any
// session: the sessions wait to be reactivated on a new channel. A reverse
// connection is re-dialed after ReconnectDelay. It returns the number of
// channels cut.
func (s *Server) DropConnections() (int, error) {
	m, err := s.do(map[string]any{"cmd": "dropConnections"})
	return m.Dropped, err
}

func (s *Server) do(req map[string]any) (message, error) {
	p, err := s.current()
	if err != nil {
		return message{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return p.command(ctx, req)
}

func (s *Server) info() readyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// Port is the server's TCP port on 127.0.0.1 (kept across Restart).
func (s *Server) Port() int { return s.info().Port }

// Addr is "127.0.0.1:<port>", the address to dial the server directly.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())) }

// EndpointURL is the server's own EndpointUrl, as sent in its RHE
// ("opc.tcp://<Hostname>:<port>"). Its host is not necessarily resolvable.
func (s *Server) EndpointURL() string { return s.info().EndpointURL }

// DialURL is an EndpointUrl that reaches the server directly:
// "opc.tcp://127.0.0.1:<port>".
func (s *Server) DialURL() string { return "opc.tcp://" + s.Addr() }

// ApplicationURI is the server's ApplicationUri (the RHE's ServerUri).
func (s *Server) ApplicationURI() string { return s.info().ApplicationURI }

// NamespaceURI is the URI of the test namespace.
func (s *Server) NamespaceURI() string { return s.info().NamespaceURI }

// NamespaceIndex is the test namespace's index in this server's
// NamespaceArray.
func (s *Server) NamespaceIndex() uint16 { return s.info().NamespaceIndex }

// NodeID returns the NodeId of a node name of this package, e.g.
// NodeID(NodeCounter) = ns=<NamespaceIndex>;s=Counter.
func (s *Server) NodeID(name string) *ua.NodeID {
	return ua.NewStringNodeID(s.NamespaceIndex(), name)
}

// ExpandedNodeID returns "nsu=<NamespaceURI>;s=<name>", the
// index-independent form mapping tables use.
func (s *Server) ExpandedNodeID(name string) string {
	return "nsu=" + s.NamespaceURI() + ";s=" + name
}

// CertFile is the path of the server's certificate, PEM encoded.
func (s *Server) CertFile() string { return s.info().CertFile }

// CertDERFile is the path of the server's certificate, DER encoded.
func (s *Server) CertDERFile() string { return s.info().CertDERFile }

// CertificateDER returns the server's certificate (DER), for pinning. It
// fails the test if the file cannot be read.
func (s *Server) CertificateDER() []byte {
	b, err := os.ReadFile(s.CertDERFile())
	if err != nil {
		s.t.Fatalf("nodeua: %v", err)
	}
	return b
}

// PKIDir is the server's PKI directory. Client certificates the server
// rejected land in PKIDir/server/rejected/certs.
func (s *Server) PKIDir() string { return s.cfg.PKIDir }

// PID is the process id of the current server process.
func (s *Server) PID() int { return s.info().PID }

// StartupTime is how long the current process took from its first line of
// JavaScript to ready, as measured by the server.
func (s *Server) StartupTime() time.Duration {
	return time.Duration(s.info().StartupMS) * time.Millisecond
}

// Logs returns the server's log so far (the tail, at most 1 MiB).
func (s *Server) Logs() string { return s.logs.String() }

// process is one node process and its control channel.
type process struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ready   chan readyInfo
	exited  chan struct{} // closed after Wait returned
	waitErr error         // valid after exited is closed

	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan message
}

func launch(node, dir, cfgFile string, logs *tailBuffer) (*process, error) {
	cmd := exec.Command(node, "server.mjs", cfgFile)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", node, err)
	}
	p := &process{
		cmd:     cmd,
		stdin:   stdin,
		ready:   make(chan readyInfo, 1),
		exited:  make(chan struct{}),
		pending: make(map[uint64]chan message),
	}
	go func() {
		p.readStdout(stdout, logs)
		p.waitErr = cmd.Wait()
		p.mu.Lock()
		for id, ch := range p.pending {
			close(ch)
			delete(p.pending, id)
		}
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// readStdout dispatches the protocol lines until stdout closes.
func (p *process) readStdout(r io.Reader, logs *tailBuffer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			fmt.Fprintf(logs, "nodeua: unexpected stdout line: %s\n", line)
			continue
		}
		switch {
		case m.Event == "ready":
			p.ready <- m.readyInfo
		case m.Event != "":
			fmt.Fprintf(logs, "nodeua: event %s %s\n", m.Event, m.Error)
		case m.ID != nil:
			p.mu.Lock()
			ch := p.pending[*m.ID]
			delete(p.pending, *m.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// command sends one command and waits for its answer.
func (p *process) command(ctx context.Context, req map[string]any) (message, error) {
	ch := make(chan message, 1)
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()
	req["id"] = id
	b, err := json.Marshal(req)
	if err != nil {
		return message{}, err
	}
	p.writeMu.Lock()
	_, err = p.stdin.Write(append(b, '\n'))
	p.writeMu.Unlock()
	if err != nil {
		return message{}, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return message{}, fmt.Errorf("%w: exited during %v", ErrNotRunning, req["cmd"])
		}
		if !m.OK {
			return m, fmt.Errorf("%w: %v: %s", ErrCommand, req["cmd"], m.Error)
		}
		return m, nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return message{}, fmt.Errorf("nodeua: %v: %w", req["cmd"], ctx.Err())
	}
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// tailBuffer is a concurrency-safe log sink keeping the last limit bytes.
type tailBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	cut   bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.limit; over > 0 {
		b.buf.Next(over)
		b.cut = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "[… earlier lines dropped …]\n" + b.buf.String()
	}
	return b.buf.String()
}
