// Package rctest provides OPC UA servers that connect to a client with
// Reverse Connect, for testing code built on package rc, in the spirit of
// net/http/httptest.
//
// Server runs gopcua's experimental server package (None security,
// anonymous only) with a few services it lacks added (Call,
// TranslateBrowsePathsToNodeIds, paged Browse/BrowseNext) and an optional
// MaxNodesPerRead that it enforces.
//
// gopcua's server can only serve connections it accepted on its own
// listener. Server.Dial therefore works as a relay: it dials the client's
// listener, sends the ReverseHello and, once the client sent its Hello,
// dials the gopcua server on loopback and copies bytes both ways. The relay is test-only and lives here only; the
// relayed stream is byte for byte what the server sends, and it lets tests
// freeze or drop a connection at will.
package rctest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
)

// Defaults of Options.
const (
	DefaultServerURI    = "urn:rcbridge:rctest"
	DefaultNamespaceURI = "urn:rcbridge:rctest:ns"
)

// Options configures a Server.
type Options struct {
	// ServerURI is the ServerUri sent in the ReverseHello. Default
	// DefaultServerURI.
	ServerURI string
	// EndpointURL is the EndpointUrl sent in the ReverseHello. Default: the
	// gopcua server's own loopback URL. A different host (for example
	// "opc.tcp://plc.invalid:4840") is fine: it is never resolved by the
	// client, and the gopcua server does not check it.
	EndpointURL string
	// NamespaceURI names the server's test namespace (index 1). Default
	// DefaultNamespaceURI.
	NamespaceURI string
	// EnforceMaxNodesPerRead makes Read answer BadTooManyOperations when a
	// request has more nodes than the MaxNodesPerRead (32) gopcua's server
	// advertises.
	EnforceMaxNodesPerRead bool
	// MaxMonitoredItemsPerCall, if not 0, is advertised in the server's
	// OperationLimits and enforced: CreateMonitoredItems,
	// ModifyMonitoredItems, SetMonitoringMode and DeleteMonitoredItems with
	// more items answer BadTooManyOperations.
	MaxMonitoredItemsPerCall uint32
	// Certificate, if set, is the server's certificate: GetEndpoints and
	// CreateSession then also advertise Basic256Sha256 Sign and
	// SignAndEncrypt endpoints and UserName token policies encrypted with
	// Basic256Sha256. gopcua's server cannot open such a channel (see the
	// package doc); this is enough for discovery and user token tests.
	Certificate rc.KeyPair
}

// Server is a gopcua OPC UA server that connects to clients with Reverse
// Connect. Add nodes with AddVariable, AddObject and AddMethod before the
// first Dial; gopcua's address space is not safe to change while it serves.
type Server struct {
	// UA is the gopcua server.
	UA *server.Server
	// NS is the test namespace, index 1.
	NS *server.NodeNameSpace

	hello rc.Hello
	addr  string // the gopcua server's loopback address
	url   string
	opts  Options

	cancel context.CancelFunc

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	methods map[string]Method    // by object|method node id
	writers map[string]WriteFunc // dynamic variables by node id; nil for read-only ones
	browse  *browsePager
	closed  bool

	reads     atomic.Int64
	itemCalls atomic.Int64

	direct   net.Listener // ListenDirect's listener, if any
	directWG sync.WaitGroup
}

// Method implements a method for Server.AddMethod. It returns the output
// arguments and the method's status code.
type Method func(args []*ua.Variant) ([]*ua.Variant, ua.StatusCode)

// NewServer starts a gopcua server on a free loopback port.
func NewServer(opts Options) (*Server, error) {
	if opts.ServerURI == "" {
		opts.ServerURI = DefaultServerURI
	}
	if opts.NamespaceURI == "" {
		opts.NamespaceURI = DefaultNamespaceURI
	}
	var lastErr error
	for range 5 { // the free port may be taken between probe and listen
		s, err := start(opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sopts := []server.Option{
		server.EndPoint("127.0.0.1", port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.ServerName("rctest"),
	}
	if kp := opts.Certificate; kp.PrivateKey != nil {
		sopts = append(sopts,
			server.Certificate(kp.Certificate),
			server.PrivateKey(kp.PrivateKey),
			server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSign),
			server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt),
			server.EnableAuthMode(ua.UserTokenTypeUserName),
		)
	}
	uas := server.New(sopts...)
	s := &Server{
		UA:      uas,
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		url:     fmt.Sprintf("opc.tcp://127.0.0.1:%d", port),
		opts:    opts,
		conns:   make(map[*Conn]struct{}),
		methods: make(map[string]Method),
		writers: make(map[string]WriteFunc),
		browse:  newBrowsePager(),
	}
	s.hello = rc.Hello{ServerURI: opts.ServerURI, EndpointURL: opts.EndpointURL}
	if s.hello.EndpointURL == "" {
		s.hello.EndpointURL = s.url
	}
	s.registerHandlers()
	ctx, cancel := context.WithCancel(context.Background())
	if err := uas.Start(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("rctest: starting gopcua server: %w", err)
	}
	s.cancel = cancel
	s.NS = server.NewNodeNameSpace(uas, opts.NamespaceURI)
	root, err := uas.Namespace(0)
	if err != nil {
		s.Close()
		return nil, err
	}
	root.Objects().AddRef(s.NS.Objects(), id.Organizes, true)
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("rctest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Hello returns the ReverseHello the server sends.
func (s *Server) Hello() rc.Hello { return s.hello }

// URL returns the gopcua server's own endpoint URL on loopback.
func (s *Server) URL() string { return s.url }

// ReadCalls returns how many Read requests the server has answered.
func (s *Server) ReadCalls() int { return int(s.reads.Load()) }

// AddVariable adds a variable named name with value to the test namespace,
// organized under its Objects folder, and returns its node id
// ("ns=1;s=<name>"). Its DataType attribute is the built-in type of value;
// writable sets CurrentWrite in AccessLevel and UserAccessLevel.
func (s *Server) AddVariable(name string, value any, writable bool) *ua.NodeID {
	v := ua.MustVariant(value)
	rank := int32(-1)
	if t := reflect.TypeOf(value); t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 {
		rank = 1
	}
	nid := ua.NewStringNodeID(s.NS.ID(), name)
	n := s.addNode(nid, ua.NodeClassVariable, name, variableAttrs(v.Type(), rank, writable),
		func() *ua.DataValue { return server.DataValueFromValue(v) })
	s.NS.Objects().AddRef(n, id.Organizes, true)
	return nid
}

// variableAttrs returns the attributes of a variable of a built-in type.
func variableAttrs(t ua.TypeID, rank int32, writable bool) map[ua.AttributeID]*ua.DataValue {
	access := ua.AccessLevelTypeCurrentRead
	if writable {
		access |= ua.AccessLevelTypeCurrentWrite
	}
	return map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDDataType:        server.DataValueFromValue(attrs.DataType(ua.NewNumericNodeID(0, uint32(t)))), // gopcua wants an ExpandedNodeId here
		ua.AttributeIDValueRank:       server.DataValueFromValue(rank),
		ua.AttributeIDAccessLevel:     server.DataValueFromValue(byte(access)),
		ua.AttributeIDUserAccessLevel: server.DataValueFromValue(byte(access)),
	}
}

// AddObject adds an object named name under parent (nil: the namespace's
// Objects folder) and returns its node id ("ns=1;s=<name>").
func (s *Server) AddObject(parent *ua.NodeID, name string) *ua.NodeID {
	nid := ua.NewStringNodeID(s.NS.ID(), name)
	n := s.addNode(nid, ua.NodeClassObject, name, nil, nil)
	s.parent(parent).AddRef(n, id.HasComponent, true)
	return nid
}

// addNode adds a node of the test namespace with the attributes every node
// has plus more.
func (s *Server) addNode(nid *ua.NodeID, class ua.NodeClass, name string, more map[ua.AttributeID]*ua.DataValue, val server.ValueFunc) *server.Node {
	a := map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(class)),
		ua.AttributeIDBrowseName:  server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: s.NS.ID(), Name: name}),
		ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName(name, "")),
	}
	maps.Copy(a, more)
	n := server.NewNode(nid, a, nil, val)
	s.NS.AddNode(n)
	return n
}

// AddChild adds an existing node of the test namespace as a HasComponent
// child of parent, so that browse paths reach it.
func (s *Server) AddChild(parent, child *ua.NodeID) {
	s.parent(parent).AddRef(s.NS.Node(child), id.HasComponent, true)
}

func (s *Server) parent(n *ua.NodeID) *server.Node {
	if n == nil {
		return s.NS.Objects()
	}
	return s.NS.Node(n)
}

// AddMethod adds a method named name to object and returns the method's
// node id ("ns=1;s=<object>.<name>"). Calls run fn.
func (s *Server) AddMethod(object *ua.NodeID, name string, fn Method) *ua.NodeID {
	mid := ua.NewStringNodeID(s.NS.ID(), object.StringID()+"."+name)
	n := s.addNode(mid, ua.NodeClassMethod, name, nil, nil)
	s.NS.Node(object).AddRef(n, id.HasComponent, true)
	s.mu.Lock()
	s.methods[object.String()+"|"+mid.String()] = fn
	s.mu.Unlock()
	return mid
}

// Dial connects to a client listening on addr with Reverse Connect: it
// dials addr, sends the ReverseHello and relays the connection to the
// gopcua server.
func (s *Server) Dial(ctx context.Context, addr string) (*Conn, error) {
	return s.DialWith(ctx, addr, s.hello)
}

// DialWith is Dial with another ReverseHello, for example one with an
// EndpointUrl the client cannot resolve.
func (s *Server) DialWith(ctx context.Context, addr string, h rc.Hello) (*Conn, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errors.New("rctest: server closed")
	}
	client, err := DialHello(ctx, addr, h)
	if err != nil {
		return nil, err
	}
	c := s.newConn(client)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.start(s.dialServer)
	return c, nil
}

func (s *Server) newConn(client net.Conn) *Conn {
	return newConn(client, func(c *Conn) {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	})
}

// dialServer connects to the gopcua server on loopback.
func (s *Server) dialServer() (net.Conn, error) {
	return net.DialTimeout("tcp", s.addr, 5*time.Second)
}

// DialHello dials addr and sends h as a ReverseHello, and returns the
// connection for the caller to script the rest: useful to play a server
// that stalls or misbehaves.
func DialHello(ctx context.Context, addr string, h rc.Hello) (net.Conn, error) {
	return dialHello(ctx, &net.Dialer{}, addr, h)
}

// dialHello is DialHello with the given dialer (for a source address).
func dialHello(ctx context.Context, d *net.Dialer, addr string, h rc.Hello) (net.Conn, error) {
	frame, err := h.Encode()
	if err != nil {
		return nil, fmt.Errorf("rctest: %w", err)
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rctest: dialing the client: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, fmt.Errorf("rctest: sending ReverseHello: %w", err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// ListenDirect listens on a free loopback port and relays every connection
// it accepts to the gopcua server through the same relay as Dial, without a
// ReverseHello. It returns the listener's address. Use it as the baseline
// for clients that dial (opcua.Client): both paths then cross the same
// relay. The listener closes with the server.
func (s *Server) ListenDirect() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.direct != nil {
		return "", errors.New("rctest: server closed or already listening directly")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("rctest: %w", err)
	}
	s.direct = l
	s.directWG.Add(1)
	go s.acceptDirect(l)
	return l.Addr().String(), nil
}

func (s *Server) acceptDirect(l net.Listener) {
	defer s.directWG.Done()
	for {
		client, err := l.Accept()
		if err != nil {
			return
		}
		c := s.newConn(client)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			client.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		c.start(s.dialServer)
	}
}

// Close drops every connection and stops the gopcua server, its
// subscriptions included (gopcua's Close leaves their goroutines running).
func (s *Server) Close() {
	s.mu.Lock()
	if s.direct != nil {
		s.direct.Close()
	}
	s.mu.Unlock()
	s.directWG.Wait()
	s.mu.Lock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
		c.Wait()
	}
	_ = s.UA.Close()
	if s.cancel != nil {
		s.cancel()
	}
	s.stopSubscriptions()
}
