package bridge

import (
	"sync"
	"time"
)

// tokenBucket is a token bucket rate limiter: it holds at most burst
// tokens, refills rate tokens per second, and each command takes one.
// Safe for concurrent use.
type tokenBucket struct {
	rate  float64 // tokens per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes a token at time now and reports whether there was one.
func (b *tokenBucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		if d := now.Sub(b.last); d > 0 {
			b.tokens += d.Seconds() * b.rate
			if b.tokens > b.burst {
				b.tokens = b.burst
			}
		}
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
