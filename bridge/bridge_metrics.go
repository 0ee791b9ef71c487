package bridge

// Metrics are the bridge's optional hooks. The zero value disables all of
// them. The daemon attaches low-cardinality labels (the server key, an
// outcome) when it creates them; the bridge never labels by node or route.
type Metrics struct {
	// Server returns the counters of one server; the daemon labels them
	// with serverKey. Called once per server by New. Nil: no counters.
	Server func(serverKey string) ServerMetrics
	// State is called with every presence change of a server, for a
	// gauge. It must not block. Nil: none.
	State func(serverKey string, s PresenceState)
	// Problem is called with every error that kept a server's session
	// from being set up or resumed, for a status page. It must not block.
	// Nil: none.
	Problem func(serverKey string, err error)
	// CommandsUnrouted counts commands on a route that names no command
	// (answered with ErrUnknownRoute or ErrNotWritable).
	CommandsUnrouted Counter
	// RejectsDropped counts refused commands dropped without a reply
	// because the reply queue was full.
	RejectsDropped Counter
	// CommandsDuplicate counts copies of a command already received (same
	// route, id and body within Config.DedupWindow): not carried out.
	CommandsDuplicate Counter
}

// ServerMetrics are the counters of one server.
type ServerMetrics struct {
	// Sessions counts sessions set up; SetupFailures sessions whose setup
	// failed after Connect.
	Sessions, SetupFailures Counter
	// Resumes counts sessions moved onto a new connection, Recreated those
	// the server had lost, ResumeFailures failed attempts.
	Resumes, Recreated, ResumeFailures Counter
	// Notifications counts NotificationMessages received, Acknowledged
	// those acknowledged to the server after the bus confirmed them, and
	// Duplicates those received again (Republish) after they had already
	// been published: acknowledged again, not published twice.
	Notifications, Acknowledged, Duplicates Counter
	// Published counts messages handed to the bus, Confirmed those the
	// bus confirmed, Failed those of batches the bus gave up on (left
	// unacknowledged, so the server keeps them).
	Published, Confirmed, Failed Counter
	// Dropped counts data changes that could not be published: an unknown
	// client handle, or a message the bus refused as invalid.
	Dropped Counter
	// Gaps counts gap events (data the server could no longer deliver).
	Gaps Counter
	// Commands counts commands carried out with a Good result, CommandsBad
	// those the server answered with a Bad status, CommandsRefused those
	// refused before reaching the server (malformed, wrong type, not
	// writable, offline), CommandsLimited those refused by the rate
	// limit, and CommandsBusy those refused because the queue was full.
	Commands, CommandsBad, CommandsRefused, CommandsLimited, CommandsBusy Counter
}
