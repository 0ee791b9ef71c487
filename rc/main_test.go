package rc_test

import (
	"io"
	"log"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/rcbridge/rcbridge/rc/rctest"
)

// TestMain fails the package's tests if any goroutine outlives them.
// In a load process started by a benchmark (rctest.StartLoadProcess) it
// serves load servers instead.
func TestMain(m *testing.M) {
	if rctest.IsLoadProcess() {
		os.Exit(rctest.ServeLoadProcess(os.Stdin, os.Stdout))
	}
	// gopcua's server package (behind rctest) logs through the standard
	// logger; keep test and benchmark output readable.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}
