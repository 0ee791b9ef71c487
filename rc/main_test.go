package rc

import (
	"io"
	"log"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// gopcua's server package (behind rctest) logs through the standard
	// logger; keep test and benchmark output readable.
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}
