package rc

import "net"

// Session is an admitted reverse connection: the validated ReverseHello and
// the socket it arrived on, positioned just after the RHE frame.
//
// Ownership: whoever receives a Session owns Conn and must close it, either
// directly or by handing the Session to a client that takes ownership (the
// client then closes it). The listener never touches Conn again.
type Session struct {
	// ServerURI is the ServerUri of the RHE, checked by the listener's
	// Validator.
	ServerURI string
	// EndpointURL is the EndpointUrl of the RHE. The client must send it back
	// byte for byte in its Hello (Part 6, 7.1.2.6); it is never resolved or
	// dialed.
	EndpointURL string
	// Conn is the accepted socket. It is a *net.TCPConn for sockets accepted
	// by Listener.
	Conn net.Conn
}

// Hello returns the ReverseHello the session was admitted with.
func (s *Session) Hello() Hello {
	return Hello{ServerURI: s.ServerURI, EndpointURL: s.EndpointURL}
}
