// Command rcbridge accepts OPC UA Reverse Connect from servers and bridges
// their data to NATS or MQTT.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "rcbridge: the daemon is not built yet")
	os.Exit(2)
}
