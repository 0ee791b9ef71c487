package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rcbridge/rcbridge/cmd/internal/config"
)

// clientFlags are the flags tail and request share.
type clientFlags struct {
	fs         *flag.FlagSet
	configFile *string
}

func newClientFlags(name, usage string, e env) clientFlags {
	fs := flag.NewFlagSet("rcbridge "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cf := clientFlags{fs: fs, configFile: fs.String("config", defaultConfigFile(e), "configuration `file`: the bus to connect to (default $RCBRIDGE_CONFIG, else rcbridge.toml)")}
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: rcbridge %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return cf
}

// parse parses args; code is the exit code when ok is false.
func (cf clientFlags) parse(args []string) (ok bool, code int) {
	if err := cf.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, exitOK
		}
		return false, exitUsage
	}
	return true, exitOK
}

// connect loads the configuration and connects to its bus.
func (cf clientFlags) connect(name string, e env) (*config.Config, busClient, bool) {
	cfg, ok := loadConfig(*cf.configFile, e)
	if !ok {
		return nil, nil, false
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := dialBus(cfg.Bus, name, false, e.lookupEnv, log)
	if err != nil {
		fmt.Fprintf(e.stderr, "rcbridge %s: %v\n", name, err)
		return nil, nil, false
	}
	return cfg, bus, true
}

// tail implements "rcbridge tail [SUBJECT|TOPIC]": print every message on
// the bus under the configured prefix (or matching the given subject or
// topic filter) until interrupted.
func tail(ctx context.Context, args []string, e env) int {
	cf := newClientFlags("tail", "tail [flags] [SUBJECT|TOPIC]\n\nPrints the messages on the configured bus: by default everything under the\nconfigured prefix (NATS \"<prefix>.>\", MQTT \"<prefix>/#\"). Wildcards work.", e)
	raw := cf.fs.Bool("raw", false, "print payloads exactly as received")
	full := cf.fs.Bool("json", false, "print whole JSON payloads (compacted) instead of the short form of data and presence messages")
	if ok, code := cf.parse(args); !ok {
		return code
	}
	if cf.fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "rcbridge tail: at most one SUBJECT or TOPIC")
		return exitUsage
	}
	cfg, bus, ok := cf.connect("tail", e)
	if !ok {
		return exitFailure
	}
	defer closeBus(bus)
	filter := cf.fs.Arg(0)
	if filter == "" {
		filter = cfg.Bus.Prefix + ".>"
		if cfg.Bus.Kind == config.BusMQTT {
			filter = cfg.Bus.Prefix + "/#"
		}
	}
	var mu sync.Mutex // MQTT handlers may run concurrently
	err := bus.Subscribe(filter, func(m busMessage) {
		line := formatMessage(time.Now(), m, format{raw: *raw, full: *full})
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(e.stdout, line)
	})
	if err != nil {
		fmt.Fprintln(e.stderr, "rcbridge tail:", err)
		return exitFailure
	}
	fmt.Fprintf(e.stderr, "rcbridge tail: listening on %q (Ctrl-C to stop)\n", filter)
	<-ctx.Done()
	return exitOK
}

func closeBus(bus busClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = bus.Close(ctx)
}

// format says how tail prints payloads.
type format struct {
	raw  bool // exactly as received
	full bool // whole JSON, compacted
}

// formatMessage renders one message on a line: local time, route, payload.
// Data messages print as "value type status", presence messages as "state
// since …"; other JSON is compacted, anything that is not UTF-8 quoted.
func formatMessage(at time.Time, m busMessage, f format) string {
	text := ""
	if !f.raw && !f.full {
		text, _ = summarize(m.Payload)
	}
	if text == "" {
		payload := m.Payload
		var b bytes.Buffer
		if !f.raw && json.Compact(&b, payload) == nil {
			payload = b.Bytes()
		}
		text = string(payload)
		if !utf8.Valid(payload) {
			text = fmt.Sprintf("%q", payload)
		}
	}
	retained := ""
	if m.Retained {
		retained = " (retained)"
	}
	return fmt.Sprintf("%s %s%s %s\n", at.Format("15:04:05.000"), m.Route, retained, text)
}

// summarize returns the short form of a data message ({"value", "type",
// "status", …}) or a presence message ({"state", "since", …}), or "".
func summarize(payload []byte) (string, bool) {
	var doc struct {
		Value  json.RawMessage `json:"value"`
		Type   string          `json:"type"`
		Status *struct {
			Name string `json:"name"`
		} `json:"status"`
		State string `json:"state"`
		Since string `json:"since"`
	}
	if json.Unmarshal(payload, &doc) != nil {
		return "", false
	}
	switch {
	case doc.Value != nil && doc.Type != "" && doc.Status != nil:
		var v bytes.Buffer
		if json.Compact(&v, doc.Value) != nil {
			return "", false
		}
		return v.String() + " " + doc.Type + " " + doc.Status.Name, true
	case doc.State != "" && doc.Value == nil:
		if doc.Since != "" {
			return doc.State + " since " + doc.Since, true
		}
		return doc.State, true
	}
	return "", false
}

// request implements "rcbridge request ROUTE JSON": send a command (a
// write or a method call) and print the reply.
func request(ctx context.Context, args []string, e env) int {
	cf := newClientFlags("request", `request [flags] SUBJECT|TOPIC JSON

Sends a command and prints the reply. NATS: a request on the command
subject. MQTT: a publish on the command topic; the result arrives on
"<topic>/result" with the same "id" (one is added when missing).
Examples:
  rcbridge request rcbridge.line1.setpoint.set '{"value": 42.5}'
  rcbridge request rcbridge.line1.reset.call '{"args": [0]}'
Exit code 1 when there is no reply or the reply says "ok": false.`, e)
	timeout := cf.fs.Duration("timeout", 10*time.Second, "how long to wait for the reply")
	if ok, code := cf.parse(args); !ok {
		return code
	}
	if cf.fs.NArg() != 2 {
		cf.fs.Usage()
		return exitUsage
	}
	route, payload := cf.fs.Arg(0), []byte(cf.fs.Arg(1))
	if !json.Valid(payload) {
		fmt.Fprintf(e.stderr, "rcbridge request: %q is not JSON\n", payload)
		return exitUsage
	}
	_, bus, ok := cf.connect("request", e)
	if !ok {
		return exitFailure
	}
	defer closeBus(bus)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reply, err := bus.Request(ctx, route, payload)
	if err != nil {
		fmt.Fprintln(e.stderr, "rcbridge request:", err)
		return exitFailure
	}
	fmt.Fprint(e.stdout, formatMessage(time.Now(), busMessage{Route: route, Payload: reply}, format{full: true}))
	var r struct {
		OK *bool `json:"ok"`
	}
	if json.Unmarshal(reply, &r) == nil && r.OK != nil && !*r.OK {
		return exitFailure
	}
	return exitOK
}
