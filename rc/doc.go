// Package rc is an OPC UA Reverse Connect client library.
//
// With Reverse Connect (OPC UA Part 6, 7.1.3) the server opens the TCP
// connection and announces itself with a ReverseHello (RHE) message; the
// client then runs an ordinary client session over that socket. Package rc
// provides the pieces a client needs for that: the RHE codec, a listener that
// admits sockets under strict rules (deadlines, size caps, allow-lists,
// pending-socket caps), and the handoff of each admitted socket as a
// [Session].
//
// A [Factory] turns an admitted Session into a [Client]: an OPC UA session
// (with security, server trust and user identity) on that very socket, with
// the Attribute, Method and View services. [Client.Resume] moves the session
// onto the server's next reverse connection. Package rc/rctest has test
// servers that connect with Reverse Connect.
//
// rc imports only the standard library and gopcua's lower layers.
package rc
