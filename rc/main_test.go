package rc

import (
	"io"
	"log"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	// gopcua's server package (behind rctest) logs through the standard
	// logger; keep test and benchmark output readable.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}
