// Package bridge connects reverse-connected OPC UA sessions to a message bus:
// one supervisor per server, notifications published through a Publisher,
// commands from a CommandSource turned into writes and method calls.
//
// The bus is reached only through the small interfaces declared here, each
// documenting its contract: [Publisher] (batches confirmed by the bus,
// acknowledge-after-delivery, DESIGN decision 3), [PresencePublisher]
// (decision 9), [CommandSource] with [Command.Reply], and [Health]. [Bus]
// bundles them with Close; the adapters in bridge/natsbus and
// bridge/mqttbus implement it, and bridge/bustest is the conformance suite
// both pass. Metrics are injected as nil-safe [Counter] values in
// [BusMetrics]. Package bridge imports no bus client.
package bridge
