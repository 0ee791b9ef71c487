package buskit

import (
	"context"
	"fmt"
	"sync"
)

// Once runs an adapter's Close sequence a single time; later calls wait
// for it and return its result. The zero value is ready to use.
type Once struct {
	once sync.Once
	done chan struct{}
	err  error
}

// Do runs f on the first call. A later call waits until the first is done
// or ctx ends; prefix names the package in that error.
func (o *Once) Do(ctx context.Context, prefix string, f func() error) error {
	first := false
	o.once.Do(func() {
		first = true
		o.done = make(chan struct{})
	})
	if !first {
		select {
		case <-o.done:
			return o.err
		case <-ctx.Done():
			return fmt.Errorf("%s: close: %w", prefix, ctx.Err())
		}
	}
	o.err = f()
	close(o.done)
	return o.err
}

// AwaitDrained waits until drained is closed (every batch confirmed) or
// ctx ends; then it reports how many batches left() says are unconfirmed.
func AwaitDrained(ctx context.Context, drained <-chan struct{}, left func() int, prefix string) error {
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: close: %d batches still unconfirmed: %w", prefix, left(), ctx.Err())
	}
}
