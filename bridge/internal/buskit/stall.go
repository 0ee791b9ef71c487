package buskit

import (
	"fmt"
	"time"
)

// StallError builds the Ready error for a batch unconfirmed since oldest,
// or returns nil when oldest is zero or younger than limit.
func StallError(oldest time.Time, limit time.Duration, now time.Time, sentinel error) error {
	if oldest.IsZero() || limit <= 0 {
		return nil
	}
	if age := now.Sub(oldest); age > limit {
		return fmt.Errorf("%w: oldest unconfirmed batch waiting %s (limit %s)", sentinel, age.Round(time.Millisecond), limit)
	}
	return nil
}
