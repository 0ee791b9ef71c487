package buskit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rcbridge/rcbridge/bridge/internal/testpki"
)

func TestWindow(t *testing.T) {
	w := NewWindow(10)
	stop := make(chan struct{})
	errStop := errors.New("stopped")
	ctx := context.Background()
	if n, err := w.Acquire(ctx, stop, 6, errStop); n != 6 || err != nil {
		t.Fatalf("Acquire 6: %d %v", n, err)
	}
	for _, n := range []int{5, 25} { // over the free room; 25 is over the whole window
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		if _, err := w.Acquire(short, stop, n, errStop); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire %d with 6 of 10 used: %v, want DeadlineExceeded", n, err)
		}
		cancel()
	}
	got := make(chan int)
	go func() {
		n, _ := w.Acquire(ctx, stop, 5, errStop)
		got <- n
	}()
	w.Release(6)
	if n := <-got; n != 5 {
		t.Fatalf("waiter got %d slots", n)
	}
	w.Release(5)
	// A request larger than the window takes all of it, alone.
	if n, err := w.Acquire(ctx, stop, 25, errStop); n != 10 || err != nil {
		t.Fatalf("oversized Acquire on an empty window: %d %v", n, err)
	}
	close(stop)
	if _, err := w.Acquire(ctx, stop, 1, errStop); !errors.Is(err, errStop) {
		t.Fatalf("Acquire after stop: %v", err)
	}
	w.Release(10)
	if w.Used() != 0 {
		t.Errorf("Used = %d", w.Used())
	}
	defer func() {
		if recover() == nil {
			t.Error("over-release did not panic")
		}
	}()
	w.Release(1)
}

func TestTLSConfig(t *testing.T) {
	if cfg, err := TLSConfig(false, "", "", "", ""); cfg != nil || err != nil {
		t.Errorf("no TLS asked: %v %v", cfg, err)
	}
	pki := testpki.New(t)
	cfg, err := TLSConfig(false, pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile, "broker")
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "broker" {
		t.Fatalf("TLSConfig: %+v %v", cfg, err)
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = TLSConfig(true, notPEM, pki.ClientCertFile, "", "")
	if err == nil {
		t.Fatal("bad CA and half a key pair accepted")
	}
	for _, want := range []string{`tls ca file "` + notPEM + `": no PEM certificate`, "give both or neither"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStallError(t *testing.T) {
	now := time.Now()
	sentinel := errors.New("stalled")
	if StallError(time.Time{}, time.Second, now, sentinel) != nil || StallError(now.Add(-time.Millisecond), time.Second, now, sentinel) != nil {
		t.Error("fresh or no batch reported as stalled")
	}
	if err := StallError(now.Add(-2*time.Second), time.Second, now, sentinel); !errors.Is(err, sentinel) {
		t.Errorf("old batch: %v", err)
	}
}
