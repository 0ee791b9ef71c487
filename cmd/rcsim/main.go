// Command rcsim is a simulated PLC for trying rcbridge out: a small OPC UA
// server that connects to one or more clients with Reverse Connect (OPC UA
// Part 6, 7.1.3), dialing out and announcing itself with a ReverseHello, and
// dialing again with exponential backoff when a connection is refused or
// drops.
//
// It serves a plant model in its namespace (-namespace, default
// "urn:rcbridge:sim"), under the object Plant:
//
//	Counter1 … CounterN  Int32, counter k grows by k every -interval (N = -nodes)
//	Sine                 Double, a sine of amplitude 10 and period 30 s
//	SetPoint             Double, writable, 0 … 100 (other values: Bad_OutOfRange)
//	Temperature          Double, follows SetPoint
//	Reset(Int32) UInt32  method: sets every counter, returns how many there are
//
// Node ids are "nsu=<namespace>;s=<name>", e.g. "nsu=urn:rcbridge:sim;s=SetPoint",
// and "nsu=urn:rcbridge:sim;s=Plant.Reset" for the method.
//
// rcsim runs gopcua's server (through package rc/rctest): security None
// and anonymous users only, no Republish or TransferSubscriptions (a client
// resuming a session recreates its monitored items), and subscriptions
// live only as long as their connection. Subscription ids are handed out
// as "count + 1", so with several clients at once (several -connect URLs)
// a reconnecting client can get the id of another client's subscription
// and stop it: use one client per rcsim where that matters. Run several
// rcsim at once with different -server-uri values.
//
// Usage:
//
//	rcsim -connect opc.tcp://127.0.0.1:4844 -server-uri urn:plant:line1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// Defaults of the flags.
const (
	defaultServerURI = "urn:rcbridge:sim"
	defaultNamespace = "urn:rcbridge:sim"
	defaultPort      = "4840" // Part 6, 7.2: the default port of opc.tcp
	// stuckTimeout bounds the wait for the plant goroutine at shutdown:
	// gopcua's server can block a change notification forever when a
	// subscription dies with its queue full.
	stuckTimeout = 5 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// cli runs rcsim with the command-line arguments args and returns the exit
// code: 0 after a clean stop, 1 when it failed, 2 for bad flags.
func cli(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "rcsim:", err)
		return 2
	}
	logger := newLogger(stderr, o)
	// gopcua's server package logs through the standard logger.
	log.SetFlags(0)
	log.SetOutput(io.Discard)
	if o.logLevel <= slog.LevelDebug {
		log.SetOutput(slog.NewLogLogger(logger.Handler(), slog.LevelDebug).Writer())
	}
	if err := run(ctx, o, logger); err != nil {
		logger.Error("rcsim failed", "err", err)
		return 1
	}
	return 0
}

// options are the parsed flags.
type options struct {
	connect     []string // host:port of each client, from the -connect URLs
	serverURI   string
	endpointURL string
	namespace   string
	nodes       int
	interval    time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	logLevel    slog.Level
	logJSON     bool
}

// urlList collects repeated -connect flags.
type urlList []string

func (l *urlList) String() string     { return strings.Join(*l, ",") }
func (l *urlList) Set(s string) error { *l = append(*l, s); return nil }

func parseFlags(args []string, out io.Writer) (options, error) {
	var (
		o       options
		urls    urlList
		level   string
		format  string
		fs      = flag.NewFlagSet("rcsim", flag.ContinueOnError)
		problem []error
	)
	fs.SetOutput(out)
	fs.Var(&urls, "connect", "`URL` of a client to reverse-connect to, opc.tcp://host:port (repeatable, at least one)")
	fs.StringVar(&o.serverURI, "server-uri", defaultServerURI, "ServerUri sent in the ReverseHello: the client's allow-list must hold it")
	fs.StringVar(&o.endpointURL, "endpoint-url", "", "EndpointUrl sent in the ReverseHello (default: the server's own loopback URL)")
	fs.StringVar(&o.namespace, "namespace", defaultNamespace, "namespace URI of the plant's nodes")
	fs.IntVar(&o.nodes, "nodes", 3, "number of counters (Counter1 … CounterN)")
	fs.DurationVar(&o.interval, "interval", time.Second, "how often the values change (the change rate)")
	fs.DurationVar(&o.backoffMin, "backoff-min", 500*time.Millisecond, "wait before dialing again after a refusal or a drop; doubles on every failure ...")
	fs.DurationVar(&o.backoffMax, "backoff-max", 30*time.Second, "... up to this")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&format, "log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		problem = append(problem, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if len(urls) == 0 {
		problem = append(problem, errors.New("-connect: at least one client URL is needed, e.g. -connect opc.tcp://127.0.0.1:4844"))
	}
	for _, u := range urls {
		addr, err := clientAddr(u)
		if err != nil {
			problem = append(problem, err)
			continue
		}
		o.connect = append(o.connect, addr)
	}
	if o.serverURI == "" || len(o.serverURI) > rc.MaxURILength {
		problem = append(problem, fmt.Errorf("-server-uri %q: want 1 to %d bytes", o.serverURI, rc.MaxURILength))
	}
	if o.endpointURL != "" {
		if err := rc.CheckEndpointURL(o.endpointURL); err != nil {
			problem = append(problem, fmt.Errorf("-endpoint-url: %w", err))
		}
	}
	if o.namespace == "" {
		problem = append(problem, errors.New("-namespace: must not be empty"))
	}
	if o.nodes < 0 || o.nodes > 100_000 {
		problem = append(problem, fmt.Errorf("-nodes %d: want 0 to 100000", o.nodes))
	}
	if o.interval < time.Millisecond {
		problem = append(problem, fmt.Errorf("-interval %s: want at least 1ms", o.interval))
	}
	if o.backoffMin <= 0 || o.backoffMax < o.backoffMin {
		problem = append(problem, fmt.Errorf("-backoff-min %s, -backoff-max %s: want 0 < min <= max", o.backoffMin, o.backoffMax))
	}
	if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
		problem = append(problem, fmt.Errorf("-log-level %q: want debug, info, warn or error", level))
	}
	switch format {
	case "text":
	case "json":
		o.logJSON = true
	default:
		problem = append(problem, fmt.Errorf("-log-format %q: want text or json", format))
	}
	return o, errors.Join(problem...)
}

// clientAddr turns opc.tcp://host[:port] into host:port. The host is dialed,
// so unlike a ReverseHello's EndpointUrl it must resolve.
func clientAddr(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "opc.tcp" || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("-connect %q: want opc.tcp://host:port", s)
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

func newLogger(w io.Writer, o options) *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.logLevel}
	if o.logJSON {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// run serves the plant and keeps a reverse connection to every client until
// ctx is done.
func run(ctx context.Context, o options, log *slog.Logger) error {
	srv, err := rctest.NewServer(rctest.Options{ServerURI: o.serverURI, EndpointURL: o.endpointURL, NamespaceURI: o.namespace})
	if err != nil {
		return err
	}
	defer srv.Close()
	log = log.With("server_uri", o.serverURI)
	p := newPlant(o.nodes, time.Now())
	p.install(srv)
	log.Info("plant ready", "namespace", o.namespace, "counters", o.nodes, "interval", o.interval, "endpoint_url", srv.Hello().EndpointURL)

	plantDone := make(chan struct{})
	go func() {
		defer close(plantDone)
		p.run(ctx, srv, o.interval)
	}()
	var wg sync.WaitGroup
	for _, addr := range o.connect {
		d := &dialer{srv: srv, addr: addr, min: o.backoffMin, max: o.backoffMax, log: log.With("client", addr)}
		wg.Go(func() { d.run(ctx) })
	}
	wg.Wait() // the dialers return once ctx is done
	select {
	case <-plantDone:
	case <-time.After(stuckTimeout):
		return errors.New("rcsim: the OPC UA server's notification queue is stuck; stopping without waiting for it")
	}
	log.Info("stopped")
	return nil
}
