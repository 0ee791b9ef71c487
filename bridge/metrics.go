package bridge

// Counter is an injected monotonically increasing count. A nil Counter
// counts nothing, so every metric is optional. Implementations must be
// safe for concurrent use and must not block.
type Counter func(n uint64)

// Add adds n to c; it does nothing when c is nil.
func (c Counter) Add(n uint64) {
	if c != nil && n > 0 {
		c(n)
	}
}

// BusMetrics are the counters a bus adapter reports. The zero value
// disables all of them. They carry no labels: the daemon attaches
// low-cardinality ones (bus, mode) when it creates them, never routes or
// node ids.
type BusMetrics struct {
	// Published counts messages written to the broker connection,
	// including re-sends.
	Published Counter
	// Confirmed counts messages the broker confirmed.
	Confirmed Counter
	// Retried counts messages sent again because their confirmation failed
	// or was lost in a reconnect.
	Retried Counter
	// Failed counts messages of batches that ended with an error (Close,
	// or a permanent rejection by the broker).
	Failed Counter
	// Lost counts MQTT QoS 0 messages whose write failed: at most once
	// means they are not sent again.
	Lost Counter
	// Reconnects counts successful reconnections to the broker.
	Reconnects Counter
	// CommandsReceived counts commands handed to a CommandHandler.
	CommandsReceived Counter
	// CommandsDropped counts commands dropped because the command queue
	// was full.
	CommandsDropped Counter
}
