//go:build !unix

package rctest

import (
	"errors"
	"time"
)

// ProcessCPU returns the CPU time this process has used so far; it needs
// getrusage and fails on other systems.
func ProcessCPU() (time.Duration, error) {
	return 0, errors.New("rctest: process CPU time needs a unix system")
}
