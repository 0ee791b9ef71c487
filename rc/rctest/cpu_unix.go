//go:build unix

package rctest

import (
	"fmt"
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time this process has used so far, user and
// system, over all its threads (getrusage RUSAGE_SELF): the work of every
// goroutine, the garbage collector and the system calls it made, wherever
// they ran.
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("rctest: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
