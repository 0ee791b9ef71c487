package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rcbridge/rcbridge/cmd/internal/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const defaultShutdownTimeout = 15 * time.Second

// env gives the commands their surroundings, so that tests can run them
// in-process.
type env struct {
	stdout, stderr io.Writer
	// environ is the environment in os.Environ form.
	environ []string
}

// lookupEnv looks a variable up in e.environ, like os.LookupEnv.
func (e env) lookupEnv(name string) (string, bool) {
	for i := len(e.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e.environ[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// cli runs rcbridge with the command-line arguments args and returns the
// exit code.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	e := env{stdout: stdout, stderr: stderr, environ: environ}
	if len(args) > 0 {
		switch args[0] {
		case "gen-cert":
			return genCert(args[1:], e)
		case "tail":
			return tail(ctx, args[1:], e)
		case "request":
			return request(ctx, args[1:], e)
		}
	}
	fs := flag.NewFlagSet("rcbridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  rcbridge [-config FILE] [-shutdown-timeout D]   run the daemon
  rcbridge -check-config FILE                      check a configuration, list every problem
  rcbridge -version                                print the version
  rcbridge gen-cert [flags]                        create the client certificate and key
  rcbridge tail [flags] [SUBJECT|TOPIC]            print the messages on the bus
  rcbridge request [flags] SUBJECT|TOPIC JSON      send a command, print the reply

Flags:
`)
		fs.PrintDefaults()
	}
	configFile := fs.String("config", defaultConfigFile(e), "configuration `file` (default $RCBRIDGE_CONFIG, else rcbridge.toml)")
	check := fs.String("check-config", "", "check the configuration `file` and exit: every problem is listed, exit code 1 if there is any")
	version := fs.Bool("version", false, "print the version and exit")
	shutdown := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "how long a graceful shutdown may take before the rest is closed forcefully")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rcbridge: unknown command %q (want gen-cert, tail or request)\n", fs.Arg(0))
		return exitUsage
	}
	switch {
	case *version:
		fmt.Fprintln(stdout, "rcbridge", buildVersion())
		return exitOK
	case *check != "":
		return checkConfig(*check, e)
	case *shutdown <= 0:
		fmt.Fprintf(stderr, "rcbridge: -shutdown-timeout %s: must be positive\n", *shutdown)
		return exitUsage
	}
	cfg, ok := loadConfig(*configFile, e)
	if !ok {
		return exitFailure
	}
	log := newLogger(stderr, cfg.Log)
	err := run(ctx, cfg, runOptions{log: log, lookupEnv: e.lookupEnv, shutdownTimeout: *shutdown, version: buildVersion()})
	if err != nil {
		log.Error("rcbridge stopped with an error", "err", err)
		return exitFailure
	}
	return exitOK
}

func defaultConfigFile(e env) string {
	if f, ok := e.lookupEnv("RCBRIDGE_CONFIG"); ok && f != "" {
		return f
	}
	return "rcbridge.toml"
}

// loadConfig loads and validates file, printing every problem.
func loadConfig(file string, e env) (*config.Config, bool) {
	cfg, err := config.Load(file, e.environ)
	if err != nil {
		printProblems(e.stderr, file, err)
		return nil, false
	}
	return cfg, true
}

// printProblems lists every configuration problem on its own line.
func printProblems(w io.Writer, file string, err error) {
	var problems []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			problems = append(problems, line)
		}
	}
	noun := "problems"
	if len(problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(w, "rcbridge: %s: %d %s:\n", file, len(problems), noun)
	for _, p := range problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

// checkConfig implements -check-config: load, validate and build the
// mapping table; print every problem.
func checkConfig(file string, e env) int {
	cfg, ok := loadConfig(file, e)
	if !ok {
		return exitFailure
	}
	table, err := cfg.Table()
	if err != nil {
		printProblems(e.stderr, file, err)
		return exitFailure
	}
	items := 0
	for _, s := range table.Servers() {
		items += len(table.For(s.URI))
	}
	fmt.Fprintf(e.stdout, "%s: OK (%d servers, %d mapped items, %d command routes, bus %s)\n",
		file, len(cfg.Servers), items, len(table.CommandRoutes()), cfg.Bus.Kind)
	return exitOK
}

func newLogger(w io.Writer, l config.Log) *slog.Logger {
	o := &slog.HandlerOptions{Level: l.Level.Level()}
	if l.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// buildVersion returns the module version and VCS revision the binary was
// built from.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev[:min(12, len(rev))] + dirty
	}
	return v
}
