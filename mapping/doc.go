// Package mapping turns the declarative mapping table into an immutable
// routing table: which nodes of which server go to which subject or topic,
// how values are encoded, and which nodes accept commands. It does no I/O.
package mapping
