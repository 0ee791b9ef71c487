// Package buskit holds the pieces the bus adapters share: the bounded
// in-flight window, the TLS loader, and the stall clock behind Ready.
package buskit
