// Package bridge connects reverse-connected OPC UA sessions to a message
// bus. It declares the small interfaces it consumes — Source and Client on
// the OPC UA side (package rcsource adapts package rc), Publisher,
// PresencePublisher and CommandSource on the bus side — and runs the
// orchestration between them:
//
//   - one supervisor per server of the mapping table takes that server's
//     sessions one at a time (never two at once), resolves the mapping rows
//     in each session (nsu= node ids, browse paths), reads the types of
//     writable nodes, plans the subscriptions by the configured limits, and
//     keeps the session across dropped connections with Resume;
//   - every NotificationMessage becomes one batch of bus messages, and it
//     is acknowledged to the server only after the bus confirmed the whole
//     batch (DESIGN decision 3), so a slow or restarting bus costs latency,
//     not data; messages the server sends again after a resume are not
//     published twice; lost data is announced as a gap event;
//   - each server's presence (online, resuming, offline, with the time it
//     began) is published through the PresencePublisher;
//   - commands from the CommandSource are checked against the mapping
//     (writable rows and declared methods only), the server's state, a
//     per-server token bucket and a bounded queue, coerced to the node's
//     DataType and ValueRank, written or called, and answered with
//     {id, ok, status, error}; commands on routes in the shape of a command
//     route that no row declares (the Table's CommandFilters) are answered
//     as unknown, and a command delivered twice (same route, id and body)
//     is carried out once.
//
// The bus is reached only through the interfaces declared here, each
// documenting its contract: [Publisher] (batches confirmed by the bus,
// acknowledge-after-delivery, DESIGN decision 3), [PresencePublisher]
// (decision 9), [CommandSource] with [Command.Reply], and [Health]. [Bus]
// bundles them with Close; the adapters in bridge/natsbus and
// bridge/mqttbus implement it, and bridge/bustest is the conformance suite
// both pass. Package bridge imports no bus client and not package rc.
//
// Every queue is bounded and counts what it drops; metrics are optional,
// nil-safe hooks ([Metrics], [BusMetrics]); logs go to an injected
// slog.Logger.
package bridge
