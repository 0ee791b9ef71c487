package rctest

import (
	"io"
	"log"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // gopcua's server logs through the standard logger
	goleak.VerifyTestMain(m)
}
