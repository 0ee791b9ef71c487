package rctest

import (
	"io"
	"log"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if IsLoadProcess() { // started by TestLoadProcess
		os.Exit(ServeLoadProcess(os.Stdin, os.Stdout))
	}
	log.SetOutput(io.Discard) // gopcua's server logs through the standard logger
	goleak.VerifyTestMain(m)
}
