// Package bridge connects reverse-connected OPC UA sessions to a message bus:
// one supervisor per server, notifications published through a Publisher,
// commands from a CommandSource turned into writes and method calls.
package bridge
