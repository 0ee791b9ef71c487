package rctest

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/rc"
)

func TestLoadProcess(t *testing.T) {
	p := StartLoadProcess(t, LoadOptions{ChangesPerMessage: 5})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan error, 1)
	go func() { dialed <- p.Dial("urn:load:proc", ln.Addr().String()) }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, err := rc.ReadHello(conn, 0)
	if err != nil {
		t.Fatalf("ReadHello: %v", err)
	}
	if h.ServerURI != "urn:load:proc" {
		t.Errorf("ServerURI %q, want urn:load:proc", h.ServerURI)
	}
	if err := <-dialed; err != nil {
		t.Fatalf("Dial: %v", err)
	}
	for _, on := range []bool{true, false} {
		if err := p.Pause(on); err != nil {
			t.Errorf("Pause(%v): %v", on, err)
		}
	}
	if err := p.Dial("urn:with space", ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "white space") {
		t.Errorf("Dial with a space in the URI: %v", err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	if err := p.Dial("urn:load:nobody", addr); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Dial to a closed port: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.Pause(true); err == nil {
		t.Error("Pause after Close succeeded")
	}
}

func TestServeLoadProcessInput(t *testing.T) {
	t.Setenv(loadProcessEnv, `{"ChangesPerMessage":1}`)
	var out strings.Builder
	if code := ServeLoadProcess(strings.NewReader("bogus\npause\n"), &out); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if want := "error rctest: unknown command \"bogus\"\nok\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	t.Setenv(loadProcessEnv, `{`)
	out.Reset()
	if code := ServeLoadProcess(strings.NewReader(""), &out); code != 2 || !strings.HasPrefix(out.String(), "error rctest: load process options") {
		t.Errorf("bad options: exit code %d, output %q", code, out.String())
	}
}
