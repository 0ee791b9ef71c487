// Package mapping turns the declarative mapping table into an immutable
// routing table: which nodes of which server go to which subject or topic,
// how values are encoded, and which nodes accept commands. It does no I/O
// and imports only the standard library and gopcua's ua package.
//
// The pieces, in the order the bridge uses them:
//
//   - New builds a *Table from a Config (bus Syntax and prefix, the
//     allow-listed servers, the [[map]] rows). Every row is expanded for
//     every server it names (exact URIs or globs) and every route is
//     rendered and validated at load time; all problems come back at once
//     as *PathError values ("map[3].node ...").
//   - Table.For(serverURI) lists the Items of a server; Table.Route(route)
//     finds the Item a command arrived for (the command allow-list);
//     Table.StatusRoute gives the presence subject/topic.
//   - NodeRef is a parsed node reference (nsu=/ns= NodeId text or a browse
//     path). Resolve turns NodeRefs into session NodeIds through a Resolver
//     (NamespaceArray and TranslateBrowsePathsToNodeIds), which the OPC UA
//     client implements.
//   - Item.AppendPayload (and AppendDataValue, AppendValue) encode data
//     changes as JSON into a caller-owned buffer, without allocating.
//   - DecodeWrite and DecodeCall decode commands; TypeForNode derives the
//     ValueType a value is coerced to from the node's DataType, ValueRank
//     and current value; AppendReply encodes the reply; CommandStatus maps
//     a decoding error to its status code.
//
// Routes: EscapeKey makes any string one NATS token or MQTT level with
// reversible percent-escaping, so different keys never collide;
// ValidateRoute checks a subject or topic; Template renders route templates
// with {prefix}, {server}, {name}, {path} and {node}.
package mapping
