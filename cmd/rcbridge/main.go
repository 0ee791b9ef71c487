// Command rcbridge accepts OPC UA Reverse Connect from servers and bridges
// their data to NATS or MQTT.
//
// Usage:
//
//	rcbridge [-config FILE] [-shutdown-timeout D]   run the daemon
//	rcbridge -check-config FILE                      check a configuration, list every problem
//	rcbridge -version                                print the version
//	rcbridge gen-cert [flags]                        create the client certificate and key
//	rcbridge tail [flags] [SUBJECT|TOPIC]            print the messages on the bus
//	rcbridge request [flags] SUBJECT|TOPIC JSON      send a command, print the reply
//
// The configuration file defaults to $RCBRIDGE_CONFIG, else rcbridge.toml.
// Exit codes: 0 success, 1 failure (an invalid configuration included), 2
// bad usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}
