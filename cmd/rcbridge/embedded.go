package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/rcbridge/rcbridge/cmd/internal/config"
)

// embeddedReadyTimeout bounds the embedded server's start, JetStream
// recovery of an existing store included.
const embeddedReadyTimeout = 30 * time.Second

// embeddedNATS is the in-process NATS server of [bus] kind = "embedded".
type embeddedNATS struct {
	srv       *natsserver.Server
	jetstream bool
}

// startEmbedded starts a NATS server on e.Address with JetStream storing
// under e.DataDir, and waits until it accepts clients.
func startEmbedded(e config.Embedded, log *slog.Logger) (*embeddedNATS, error) {
	host, portText, err := net.SplitHostPort(e.Address)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: address %q: %w", e.Address, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: address %q: bad port", e.Address)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT // NATS reads 0 as its default port, 4222
	}
	opts := &natsserver.Options{
		ServerName: "rcbridge-embedded",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		JetStream:  e.JetStream.Enabled,
		StoreDir:   e.DataDir,
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	log = log.With("component", "nats")
	srv.SetLoggerV2(natsLogger{log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(embeddedReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS: not ready on %s within %s (port taken? see the log)", e.Address, embeddedReadyTimeout)
	}
	log.Info("embedded NATS server ready", "url", srv.ClientURL(), "jetstream", e.JetStream.Enabled, "data_dir", e.DataDir)
	return &embeddedNATS{srv: srv, jetstream: e.JetStream.Enabled}, nil
}

// ClientURL is the URL clients connect to.
func (n *embeddedNATS) ClientURL() string { return n.srv.ClientURL() }

// Ready reports whether the server accepts clients.
func (n *embeddedNATS) Ready() error {
	switch {
	case !n.srv.Running():
		return errors.New("embedded NATS server not running")
	case n.jetstream && !n.srv.JetStreamEnabled():
		return errors.New("embedded NATS server: JetStream not enabled")
	}
	return nil
}

// Close shuts the server down (closing its client connections and
// flushing JetStream) and waits for it, or until ctx is done.
func (n *embeddedNATS) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded NATS shutdown: %w", ctx.Err())
	}
}

// natsLogger routes the NATS server's log to slog.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
