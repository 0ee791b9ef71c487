//go:build integration

package integration

import (
	"testing"

	"github.com/rcbridge/rcbridge/integration/nodeua"
)

// BenchmarkNodeUAStart measures Start (process start, node-opcua import,
// key and certificate generation in a fresh PKI directory, address space)
// plus a clean Stop.
//
//	go test -tags integration -run '^$' -bench NodeUA -benchtime 5x ./integration/
func BenchmarkNodeUAStart(b *testing.B) {
	for b.Loop() {
		nodeua.Start(b, nodeua.Config{}).Stop()
	}
}

// BenchmarkNodeUARestart measures Restart: a new process reusing the PKI
// directory and port.
func BenchmarkNodeUARestart(b *testing.B) {
	srv := nodeua.Start(b, nodeua.Config{})
	for b.Loop() {
		if err := srv.Restart(); err != nil {
			b.Fatal(err)
		}
	}
}
