package buskit

import (
	"context"
	"sync"
)

// Window bounds the number of unconfirmed messages an adapter holds. It is
// safe for concurrent use. Waiters are woken together when capacity frees;
// there is no FIFO promise between them.
type Window struct {
	mu      sync.Mutex
	max     int
	used    int
	waiting bool
	freed   chan struct{}
}

// NewWindow returns a window of max slots (max ≥ 1).
func NewWindow(max int) *Window {
	return &Window{max: max, freed: make(chan struct{})}
}

// Acquire takes n slots, blocking until they are free, ctx is done, or stop
// is closed (then it returns errStop). A request larger than the whole
// window takes the whole window, so any batch can pass alone. It returns
// the number of slots taken, to be given back with Release.
func (w *Window) Acquire(ctx context.Context, stop <-chan struct{}, n int, errStop error) (int, error) {
	n = max(min(n, w.max), 1)
	for {
		w.mu.Lock()
		if w.used+n <= w.max {
			w.used += n
			w.mu.Unlock()
			return n, nil
		}
		w.waiting = true
		ch := w.freed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-stop:
			return 0, errStop
		}
	}
}

// Release gives back n slots taken by Acquire.
func (w *Window) Release(n int) {
	w.mu.Lock()
	w.used -= n
	if w.used < 0 {
		w.mu.Unlock()
		panic("buskit: window released more than acquired")
	}
	if w.waiting {
		w.waiting = false
		close(w.freed)
		w.freed = make(chan struct{})
	}
	w.mu.Unlock()
}

// Used returns the slots currently taken.
func (w *Window) Used() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.used
}
