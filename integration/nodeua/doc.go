// Package nodeua starts rcbridge's independent OPC UA test server — node-opcua
// 2.186.4 with its native reverse connect (Part 6 §7.1.3) — for integration
// tests, and drives it over a JSON-lines control channel.
//
// The server script is integration/opcua-server/server.mjs; its packages come
// from the committed package-lock.json (`make npm-deps` runs `npm ci`). A
// test that cannot start the server fails, it never skips.
//
// Typical use:
//
//	ln, _ := net.Listen("tcp", "127.0.0.1:0")
//	srv := nodeua.Start(t, nodeua.Config{
//		Hostname:       "plc.invalid", // in the RHE; must never be resolved
//		ReverseConnect: &nodeua.ReverseConnect{ClientURLs: []string{"opc.tcp://" + ln.Addr().String()}},
//	})
//	// ... accept the socket, read the RHE, run a session ...
//	v, err := srv.Read(nodeua.NodeMotor1Speed) // the value inside the server
//
// The server listens on 127.0.0.1 only. Every test node lives in the
// namespace Config.NamespaceURI (default "urn:rcbridge:test") with a string
// NodeId; the names are the constants Node* and the functions TypeVariables
// and GenNode. Server.NodeID and Server.ExpandedNodeID turn a name into a
// NodeId. Address space (from the Objects folder):
//
//	Types/<BuiltinType>        one writable variable per built-in type, see TypeVariables
//	Line1/Motor1/Speed         Double 1500, writable      (Line1.Motor1.Speed)
//	Line1/Motor1/Running       Boolean true, writable
//	Line1/Motor2/Speed         Double 750, writable
//	Line1/Motor2/Running       Boolean true, writable
//	ReadOnly                   Int32 42, not writable     → BadNotWritable
//	OperatorOnly               Double 10, RoleOperator only → BadUserAccessDenied for others
//	Counter                    UInt32, +1 every Config.CounterInterval (10 ms)
//	Gen/N<i>                   Int32 i, writable, Config.GeneratedNodes of them (Gen.<i>)
//	Methods/Add(a, b Double)   → sum Double
//
// Writing a value of the wrong type fails with BadTypeMismatch.
//
// Security: the server offers None and Basic256Sha256, Aes128_Sha256_RsaOaep,
// Aes256_Sha256_RsaPss in Sign and SignAndEncrypt (Config.SecurityPolicies,
// Config.SecurityModes). Its certificate (ApplicationUri in the SAN, DNS names
// Hostname, localhost and the machine's host name, IP 127.0.0.1) is created
// in the PKI directory on first start (about 0.1 s) and kept across Restart;
// CertificateDER and CertFile give it to tests for pinning. Unknown client
// certificates are accepted unless Config.RejectUnknownClientCerts is set.
//
// Identity: anonymous (Config.DisableAnonymous), username/password
// (Config.Users, DefaultUsers: operator and reader) and X.509 user
// certificates (Config.X509Users).
package nodeua
