package main

import (
	"fmt"
	"slices"
	"testing"

	"github.com/rcbridge/rcbridge/mapping"
)

// TestStreamSubjectsAtScale checks the JetStream subjects of 1,000 servers
// with 100 read-only rows each: the data and status routes generalize to
// "rcbridge.*.*"; the events routes are listed one by one, as their shape
// is also that of the routes refusing writes ("….set"). Built by scanning
// lists, this took hours and the daemon never started.
func TestStreamSubjectsAtScale(t *testing.T) {
	const servers, rows = 1000, 100
	cfg := mapping.Config{Syntax: mapping.NATS, Prefix: "rcbridge"}
	for i := range servers {
		cfg.Servers = append(cfg.Servers, mapping.Server{URI: fmt.Sprintf("urn:plc%04d", i), Key: fmt.Sprintf("plc%04d", i)})
	}
	for i := range rows {
		ref, err := mapping.ParseNodeRef(fmt.Sprintf("ns=1;s=Tag%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Rows = append(cfg.Rows, mapping.Row{Servers: []string{"urn:plc*"}, Node: ref, Name: fmt.Sprintf("tag%03d", i)})
	}
	table, err := mapping.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := streamSubjects(table)
	if len(got) != 1+servers || got[0] != "rcbridge.*.*" {
		t.Fatalf("%d subjects, first %q; want rcbridge.*.* and %d events routes", len(got), got[0], servers)
	}
	for i := range servers {
		if want := fmt.Sprintf("rcbridge.status.plc%04d.events", i); !slices.Contains(got, want) {
			t.Fatalf("no %s", want)
		}
	}
}
