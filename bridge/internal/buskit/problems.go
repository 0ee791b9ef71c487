package buskit

import (
	"errors"
	"fmt"
	"time"
)

// Problems collects the problems Options.Validate finds, each wrapping
// the adapter's sentinel, so that all of them are reported at once.
type Problems struct {
	sentinel error
	errs     []error
}

// NewProblems returns an empty collection for sentinel.
func NewProblems(sentinel error) *Problems { return &Problems{sentinel: sentinel} }

// Add records one problem.
func (p *Problems) Add(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%w: "+format, append([]any{p.sentinel}, args...)...))
}

// NonNegative records a problem for every negative duration, by name.
func (p *Problems) NonNegative(durations ...NamedDuration) {
	for _, d := range durations {
		if d.Value < 0 {
			p.Add("%s %s: must not be negative", d.Name, d.Value)
		}
	}
}

// Err returns every problem joined, or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// NamedDuration is an option's key and value.
type NamedDuration struct {
	Name  string
	Value time.Duration
}

// Default sets *v to d when it is zero.
func Default(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}
