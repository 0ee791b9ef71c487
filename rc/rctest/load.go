package rctest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"
	"github.com/gopcua/opcua/uasc"
	"github.com/rcbridge/rcbridge/rc"
)

// LoadOptions configures a LoadServer.
type LoadOptions struct {
	// ServerURI is sent in the ReverseHello; default DefaultServerURI.
	ServerURI string
	// EndpointURL is sent in the ReverseHello; default
	// "opc.tcp://loadserver.invalid:4840".
	EndpointURL string
	// ChangesPerMessage is how many data changes each NotificationMessage
	// carries; default 100.
	ChangesPerMessage int
	// Messages caps the data messages of a subscription; 0 means no cap.
	// After the last one, Publish requests get keep-alives.
	Messages int
	// MaxMonitoredItemsPerCall is the advertised operation limit; 0 means
	// none.
	MaxMonitoredItemsPerCall uint32
	// SourceAddr, if valid, is the local address Dial connects from (a
	// loopback address such as 127.0.0.7 stands for another host, for
	// admission limits per source); default: chosen by the system.
	SourceAddr netip.Addr
	// MaxChunkCount is the Acknowledge's MaxChunkCount; 0 means no limit
	// (Part 6, 7.1.2.4).
	MaxChunkCount uint32
	// LargeValueSize is the length of the ByteString that reading
	// LargeValueNode returns; 0: the node does not exist.
	LargeValueSize int
}

// LargeValueNode returns the node whose Value a LoadServer answers with a
// ByteString of LoadOptions.LargeValueSize bytes, for tests of large
// responses.
func LargeValueNode() *ua.NodeID { return ua.NewStringNodeID(1, "Large") }

// LoadServer is a minimal OPC UA server (None security, anonymous) that
// connects with Reverse Connect and streams data changes as fast as the
// client asks for them: PublishResponses are encoded once and only their
// sequence numbers and values are patched per message, so that the server
// costs little next to the client it measures. gopcua's server package
// delivers about 180k changes/s on a 2-core machine, which would hide the
// client's own cost.
//
// It serves HEL/ACK, OpenSecureChannel, CreateSession, ActivateSession
// (also with an existing session's token on a new connection, for Resume),
// Read (the NamespaceArray and OperationLimits only), CreateSubscription
// (one per session), CreateMonitoredItems, Publish, Republish, CloseSession
// and CloseSecureChannel; anything else gets BadServiceUnsupported.
//
// The data changes of a subscription carry the uint32 values 0, 1, 2, …
// across messages in order, cycling over the monitored items' client
// handles, so a consumer can check that it saw each value exactly once.
// Messages stay available for Republish until acknowledged.
type LoadServer struct {
	opts  LoadOptions
	hello rc.Hello

	mu       sync.Mutex
	sessions map[string]*loadSession // by authentication token
	conns    map[*loadConn]struct{}
	nextID   uint32
	closed   bool
	wg       sync.WaitGroup

	helloIn  uacp.Hello // the last client Hello
	maxResp  uint32     // the last CreateSession's MaxResponseMessageSize
	dropNext int        // data messages to lose on the wire (kept for Republish)
	stalled  bool       // hold Publish requests without any answer
	paused   bool       // answer Publish requests with keep-alives only
	forget   bool       // drop retained messages instead of keeping them
}

// NewLoadServer returns a load server; it does nothing until Dial.
func NewLoadServer(opts LoadOptions) *LoadServer {
	if opts.ServerURI == "" {
		opts.ServerURI = DefaultServerURI
	}
	if opts.EndpointURL == "" {
		opts.EndpointURL = "opc.tcp://loadserver.invalid:4840"
	}
	if opts.ChangesPerMessage <= 0 {
		opts.ChangesPerMessage = 100
	}
	return &LoadServer{
		opts:     opts,
		hello:    rc.Hello{ServerURI: opts.ServerURI, EndpointURL: opts.EndpointURL},
		sessions: make(map[string]*loadSession),
		conns:    make(map[*loadConn]struct{}),
	}
}

// Hello returns the ReverseHello the server sends.
func (s *LoadServer) Hello() rc.Hello { return s.hello }

// Dial connects to the client listening on addr with a ReverseHello and
// serves the connection until it closes. The returned function closes it.
func (s *LoadServer) Dial(ctx context.Context, addr string) (closeConn func(), err error) {
	var d net.Dialer
	if s.opts.SourceAddr.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.opts.SourceAddr, 0))
	}
	c, err := dialHello(ctx, &d, addr, s.hello)
	if err != nil {
		return nil, err
	}
	conn, err := uacp.NewConn(c.(*net.TCPConn), &uacp.Acknowledge{ReceiveBufSize: loadBufferSize, SendBufSize: loadBufferSize})
	if err != nil {
		c.Close()
		return nil, err
	}
	lc := &loadConn{s: s, conn: conn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return nil, errors.New("rctest: load server closed")
	}
	s.conns[lc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		lc.serve()
		s.mu.Lock()
		delete(s.conns, lc)
		s.mu.Unlock()
	}()
	return lc.close, nil
}

// Close closes every connection and waits for them.
func (s *LoadServer) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// ClientBuffers returns the ReceiveBufferSize and SendBufferSize of the
// last Hello a client sent. Specification: Part 6, 7.1.2.3.
func (s *LoadServer) ClientBuffers() (receive, send uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.helloIn.ReceiveBufSize, s.helloIn.SendBufSize
}

// ClientMaxMessageSize returns the MaxMessageSize of the last Hello a
// client sent. Specification: Part 6, 7.1.2.3.
func (s *LoadServer) ClientMaxMessageSize() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.helloIn.MaxMessageSize
}

// MaxResponseMessageSize returns the MaxResponseMessageSize of the last
// CreateSession request. The server answers a larger response with a
// ServiceFault Bad_ResponseTooLarge, as Part 4, 5.6.2 asks.
func (s *LoadServer) MaxResponseMessageSize() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxResp
}

// DropNext makes the next n data messages vanish, as if sent on a
// connection that died: their sequence numbers are used and they stay
// available for Republish, but the client only gets the message after them.
func (s *LoadServer) DropNext(n int) {
	s.mu.Lock()
	s.dropNext = n
	s.mu.Unlock()
}

// Stall makes the server hold every Publish request without an answer
// (true), like a hung device, or answer again (false).
func (s *LoadServer) Stall(on bool) {
	s.mu.Lock()
	s.stalled = on
	s.mu.Unlock()
	s.kickAll()
}

// Pause makes the server answer Publish requests with keep-alives only,
// once per keep-alive period (true), or send data again (false). A
// benchmark pauses the load to measure between idle moments.
func (s *LoadServer) Pause(on bool) {
	s.mu.Lock()
	s.paused = on
	s.mu.Unlock()
	s.kickAll()
}

// ForgetUnacknowledged makes the server stop keeping messages for
// Republish (as after a retransmission queue overflow) and drops those it
// kept.
func (s *LoadServer) ForgetUnacknowledged() {
	s.mu.Lock()
	s.forget = true
	for _, sess := range s.sessions {
		if sess.sub != nil {
			clear(sess.sub.retained)
		}
	}
	s.mu.Unlock()
}

// Sent returns the last sequence number the session's subscription
// produced (sent or dropped), summed over sessions.
func (s *LoadServer) Sent() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint32
	for _, sess := range s.sessions {
		if sess.sub != nil {
			n += sess.sub.seq
		}
	}
	return n
}

// Unacknowledged returns how many messages the server keeps for
// Republish, summed over sessions.
func (s *LoadServer) Unacknowledged() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int
	for _, sess := range s.sessions {
		if sess.sub != nil {
			n += len(sess.sub.retained)
		}
	}
	return n
}

func (s *LoadServer) kickAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.kick()
	}
}

// loadSession is a session; it outlives connections.
type loadSession struct {
	token *ua.NodeID
	id    *ua.NodeID
	sub   *loadSub
	// maxResp is the client's MaxResponseMessageSize, 0 for no limit.
	maxResp uint32
}

// loadSub is the session's subscription.
type loadSub struct {
	id       uint32
	interval time.Duration
	keep     uint32
	handles  []uint32
	seq      uint32 // last sequence number produced
	retained map[uint32][]byte
	tmpl     *publishTemplate
}

// loadConn is one connection: HEL/ACK, a None secure channel, requests.
type loadConn struct {
	s    *LoadServer
	conn *uacp.Conn

	wmu     sync.Mutex // serializes writes and the chunk sequence number
	seq     uint32
	sendBuf int    // largest chunk the client receives
	wbuf    []byte // the chunks being written
	chanID  uint32
	tokenID uint32

	mu      sync.Mutex
	sess    *loadSession
	pending []publishReq // Publish requests not answered yet
	wake    chan struct{}

	closeOnce sync.Once
	done      chan struct{}
}

type publishReq struct {
	reqID, handle uint32
	at            time.Time
}

func (c *loadConn) close() {
	c.closeOnce.Do(func() {
		_ = c.conn.Close()
	})
}

func (c *loadConn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *loadConn) serve() {
	pubDone := make(chan struct{})
	defer func() {
		close(c.done)
		c.close()
		<-pubDone
	}()
	b, err := c.conn.Receive()
	hel := new(uacp.Hello)
	if err == nil && (len(b) < 8 || string(b[:4]) != "HELF") {
		err = errors.New("not a Hello")
	}
	if err == nil {
		_, err = hel.Decode(b[8:])
	}
	if err != nil {
		close(pubDone)
		return
	}
	c.s.mu.Lock()
	c.s.helloIn = *hel
	c.s.mu.Unlock()
	// Revise the client's buffer sizes down to ours, as a server must
	// (Part 6, 7.1.2.4), and send chunks no larger than it can receive.
	ack := &uacp.Acknowledge{ReceiveBufSize: min(loadBufferSize, hel.SendBufSize), SendBufSize: min(loadBufferSize, hel.ReceiveBufSize),
		MaxMessageSize: 1 << 24, MaxChunkCount: c.s.opts.MaxChunkCount}
	c.sendBuf = int(ack.SendBufSize)
	if c.sendBuf <= msgHeaderSize {
		close(pubDone)
		return
	}
	if err := c.conn.Send("ACKF", ack); err != nil {
		close(pubDone)
		return
	}
	go func() {
		defer close(pubDone)
		c.publisher()
	}()
	for {
		b, err := c.conn.Receive()
		if err != nil {
			return
		}
		m := new(uasc.Message)
		if _, err := m.Decode(b); err != nil {
			return
		}
		if m.MessageHeader.Header.MessageType == "CLO" {
			return
		}
		req, ok := m.Service.(ua.Request)
		if !ok {
			return
		}
		if err := c.handle(m.MessageHeader.Header.MessageType, m.SequenceHeader.RequestID, req); err != nil {
			return
		}
	}
}

// send writes one message: an OPN in one chunk, a MSG in as many chunks
// as the client's receive buffer needs.
func (c *loadConn) send(typ string, reqID uint32, resp ua.Response) error {
	hdr := &uasc.MessageHeader{
		Header:         uasc.NewHeader(typ, 'F', c.chanID),
		SequenceHeader: uasc.NewSequenceHeader(0, reqID),
	}
	if typ == "MSG" {
		hdr.SymmetricSecurityHeader = uasc.NewSymmetricSecurityHeader(c.tokenID)
		b, err := (&uasc.Message{MessageHeader: hdr, TypeID: ua.NewFourByteExpandedNodeID(0, ua.ServiceTypeID(resp)), Service: resp}).Encode()
		if err != nil {
			return err
		}
		if sess := c.session(); sess != nil && sess.maxResp != 0 && len(b)-msgHeaderSize > int(sess.maxResp) {
			fault := &ua.ServiceFault{ResponseHeader: responseHeader(&ua.RequestHeader{RequestHandle: resp.Header().RequestHandle}, ua.StatusBadResponseTooLarge)}
			if b, err = (&uasc.Message{MessageHeader: hdr, TypeID: ua.NewFourByteExpandedNodeID(0, ua.ServiceTypeID(fault)), Service: fault}).Encode(); err != nil {
				return err
			}
		}
		return c.writeMsg(b)
	}
	hdr.AsymmetricSecurityHeader = uasc.NewAsymmetricSecurityHeader(ua.SecurityPolicyURINone, nil, nil)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.seq++
	hdr.SequenceHeader.SequenceNumber = c.seq
	b, err := (&uasc.Message{MessageHeader: hdr, TypeID: ua.NewFourByteExpandedNodeID(0, ua.ServiceTypeID(resp)), Service: resp}).Encode()
	if err != nil {
		return err
	}
	_, err = c.conn.Write(b)
	return err
}

// msgHeaderSize is the size of a MSG chunk's headers with None security:
// message header (12), token id (4), sequence header (8).
const msgHeaderSize = 24

// loadBufferSize is the largest chunk the server sends or receives.
const loadBufferSize = 1 << 16

// writeMsg writes b, a MSG message encoded as one chunk, in chunks of at
// most the client's receive buffer size, with this connection's channel,
// token and chunk sequence numbers; b is not modified. All chunks go out
// in one write.
func (c *loadConn) writeMsg(b []byte) error {
	le := binary.LittleEndian
	reqID := le.Uint32(b[20:])
	body := b[msgHeaderSize:]
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := c.wbuf[:0]
	for final := false; !final; {
		n := min(len(body), c.sendBuf-msgHeaderSize)
		final = n == len(body)
		typ := byte('C')
		if final {
			typ = 'F'
		}
		c.seq++
		out = append(out, 'M', 'S', 'G', typ)
		out = le.AppendUint32(out, uint32(msgHeaderSize+n))
		out = le.AppendUint32(out, c.chanID)
		out = le.AppendUint32(out, c.tokenID)
		out = le.AppendUint32(out, c.seq)
		out = le.AppendUint32(out, reqID)
		out = append(out, body[:n]...)
		body = body[n:]
	}
	c.wbuf = out
	_, err := c.conn.Write(out)
	return err
}

func header(req ua.Request, status ua.StatusCode) *ua.ResponseHeader {
	return responseHeader(req.Header(), status)
}

func (c *loadConn) handle(typ string, reqID uint32, r ua.Request) error {
	s := c.s
	switch req := r.(type) {
	case *ua.OpenSecureChannelRequest:
		s.mu.Lock()
		s.nextID++
		c.chanID, c.tokenID = s.nextID, s.nextID
		s.mu.Unlock()
		return c.send("OPN", reqID, &ua.OpenSecureChannelResponse{
			ResponseHeader: header(req, ua.StatusOK),
			SecurityToken:  &ua.ChannelSecurityToken{ChannelID: c.chanID, TokenID: c.tokenID, CreatedAt: time.Now(), RevisedLifetime: req.RequestedLifetime},
			ServerNonce:    []byte{},
		})
	case *ua.CreateSessionRequest:
		s.mu.Lock()
		s.nextID++
		sess := &loadSession{token: ua.NewNumericNodeID(1, 1_000_000+s.nextID), id: ua.NewNumericNodeID(1, s.nextID), maxResp: req.MaxResponseMessageSize}
		s.sessions[sess.token.String()] = sess
		s.maxResp = req.MaxResponseMessageSize
		s.mu.Unlock()
		return c.send("MSG", reqID, &ua.CreateSessionResponse{
			ResponseHeader:        header(req, ua.StatusOK),
			SessionID:             sess.id,
			AuthenticationToken:   sess.token,
			RevisedSessionTimeout: req.RequestedSessionTimeout,
			ServerNonce:           make([]byte, 32),
			ServerSignature:       &ua.SignatureData{},
		})
	case *ua.ActivateSessionRequest:
		s.mu.Lock()
		sess := s.sessions[req.RequestHeader.AuthenticationToken.String()]
		s.mu.Unlock()
		if sess == nil {
			return c.send("MSG", reqID, &ua.ServiceFault{ResponseHeader: header(req, ua.StatusBadSessionIDInvalid)})
		}
		c.mu.Lock()
		c.sess = sess
		c.mu.Unlock()
		c.kick()
		return c.send("MSG", reqID, &ua.ActivateSessionResponse{ResponseHeader: header(req, ua.StatusOK), ServerNonce: make([]byte, 32)})
	case *ua.ReadRequest:
		return c.send("MSG", reqID, c.read(req))
	case *ua.CreateSubscriptionRequest:
		return c.send("MSG", reqID, c.createSubscription(req))
	case *ua.CreateMonitoredItemsRequest:
		return c.send("MSG", reqID, c.createItems(req))
	case *ua.PublishRequest:
		c.acknowledge(req.SubscriptionAcknowledgements)
		c.mu.Lock()
		c.pending = append(c.pending, publishReq{reqID: reqID, handle: req.RequestHeader.RequestHandle, at: time.Now()})
		c.mu.Unlock()
		c.kick()
		return nil
	case *ua.RepublishRequest:
		return c.republish(reqID, req)
	case *ua.CloseSessionRequest:
		return c.send("MSG", reqID, &ua.CloseSessionResponse{ResponseHeader: header(req, ua.StatusOK)})
	}
	return c.send("MSG", reqID, &ua.ServiceFault{ResponseHeader: header(r, ua.StatusBadServiceUnsupported)})
}

func (c *loadConn) read(req *ua.ReadRequest) *ua.ReadResponse {
	res := &ua.ReadResponse{ResponseHeader: header(req, ua.StatusOK), Results: make([]*ua.DataValue, len(req.NodesToRead))}
	for i, rv := range req.NodesToRead {
		dv := &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
		switch {
		case rv.NodeID.Equal(ua.NewNumericNodeID(0, id.Server_NamespaceArray)):
			dv = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant([]string{"http://opcfoundation.org/UA/", DefaultNamespaceURI})}
		case rv.NodeID.Equal(ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)) && c.s.opts.MaxMonitoredItemsPerCall > 0:
			dv = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(c.s.opts.MaxMonitoredItemsPerCall)}
		case rv.NodeID.Equal(LargeValueNode()) && c.s.opts.LargeValueSize > 0:
			dv = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(make([]byte, c.s.opts.LargeValueSize))}
		}
		res.Results[i] = dv
	}
	return res
}

// session returns the connection's activated session, if any.
func (c *loadConn) session() *loadSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

func (c *loadConn) createSubscription(req *ua.CreateSubscriptionRequest) ua.Response {
	sess, s := c.session(), c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess == nil || sess.sub != nil {
		return &ua.ServiceFault{ResponseHeader: header(req, ua.StatusBadTooManySubscriptions)}
	}
	s.nextID++
	sess.sub = &loadSub{
		id:       s.nextID,
		interval: time.Duration(req.RequestedPublishingInterval * float64(time.Millisecond)),
		keep:     max(req.RequestedMaxKeepAliveCount, 1),
		retained: make(map[uint32][]byte),
	}
	return &ua.CreateSubscriptionResponse{
		ResponseHeader:            header(req, ua.StatusOK),
		SubscriptionID:            sess.sub.id,
		RevisedPublishingInterval: req.RequestedPublishingInterval,
		RevisedLifetimeCount:      req.RequestedLifetimeCount,
		RevisedMaxKeepAliveCount:  sess.sub.keep,
	}
}

func (c *loadConn) createItems(req *ua.CreateMonitoredItemsRequest) ua.Response {
	sess, s := c.session(), c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess == nil || sess.sub == nil || sess.sub.id != req.SubscriptionID {
		return &ua.ServiceFault{ResponseHeader: header(req, ua.StatusBadSubscriptionIDInvalid)}
	}
	res := &ua.CreateMonitoredItemsResponse{ResponseHeader: header(req, ua.StatusOK)}
	for _, it := range req.ItemsToCreate {
		s.nextID++
		sess.sub.handles = append(sess.sub.handles, it.RequestedParameters.ClientHandle)
		res.Results = append(res.Results, &ua.MonitoredItemCreateResult{
			StatusCode: ua.StatusOK, MonitoredItemID: s.nextID,
			RevisedSamplingInterval: it.RequestedParameters.SamplingInterval, RevisedQueueSize: it.RequestedParameters.QueueSize,
		})
	}
	sess.sub.tmpl = nil // the handles changed
	return res
}

func (c *loadConn) acknowledge(acks []*ua.SubscriptionAcknowledgement) {
	sess := c.session()
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if sess == nil || sess.sub == nil {
		return
	}
	for _, a := range acks {
		if a.SubscriptionID == sess.sub.id {
			delete(sess.sub.retained, a.SequenceNumber)
		}
	}
}

func (c *loadConn) republish(reqID uint32, req *ua.RepublishRequest) error {
	sess := c.session()
	c.s.mu.Lock()
	var b []byte
	if sess != nil && sess.sub != nil && sess.sub.id == req.SubscriptionID {
		b = sess.sub.retained[req.RetransmitSequenceNumber]
	}
	c.s.mu.Unlock()
	if b == nil {
		return c.send("MSG", reqID, &ua.ServiceFault{ResponseHeader: header(req, ua.StatusBadMessageNotAvailable)})
	}
	// The retained PublishResponse's NotificationMessage is the tail of its
	// body; wrap it in a RepublishResponse.
	m := new(uasc.Message)
	if _, err := m.Decode(b); err != nil {
		return err
	}
	pr := m.Service.(*ua.PublishResponse)
	return c.send("MSG", reqID, &ua.RepublishResponse{ResponseHeader: header(req, ua.StatusOK), NotificationMessage: pr.NotificationMessage})
}

// publisher answers the pending Publish requests: with data as long as
// there is some, else with a keep-alive once the keep-alive period passed.
func (c *loadConn) publisher() {
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-time.After(50 * time.Millisecond):
		}
		for {
			sent, err := c.publishOne()
			if err != nil {
				c.close()
				return
			}
			if !sent {
				break
			}
		}
	}
}

// publishOne answers the oldest pending Publish request if it can.
func (c *loadConn) publishOne() (bool, error) {
	c.mu.Lock()
	sess := c.sess
	if len(c.pending) == 0 || sess == nil {
		c.mu.Unlock()
		return false, nil
	}
	pr := c.pending[0]
	c.mu.Unlock()

	s := c.s
	s.mu.Lock()
	sub := sess.sub
	if s.stalled || sub == nil || len(sub.handles) == 0 {
		s.mu.Unlock()
		return false, nil
	}
	data := !s.paused && (s.opts.Messages == 0 || int(sub.seq) < s.opts.Messages)
	var b []byte
	if data {
		if sub.tmpl == nil {
			var err error
			if sub.tmpl, err = newPublishTemplate(sub, s.opts.ChangesPerMessage); err != nil {
				s.mu.Unlock()
				return false, err
			}
		}
		for {
			sub.seq++
			msg := bytes.Clone(sub.tmpl.message(sub.seq, pr.reqID, pr.handle)) // the template is reused
			if !s.forget {
				sub.retained[sub.seq] = msg
			}
			if s.dropNext == 0 {
				b = msg
				break
			}
			s.dropNext-- // skipped: the client sees the sequence number jump
		}
	}
	s.mu.Unlock()

	if !data {
		if time.Since(pr.at) < sub.interval*time.Duration(sub.keep) {
			return false, nil
		}
		c.popPending()
		return true, c.send("MSG", pr.reqID, &ua.PublishResponse{
			ResponseHeader:      &ua.ResponseHeader{Timestamp: time.Now(), RequestHandle: pr.handle, ServiceDiagnostics: &ua.DiagnosticInfo{}, AdditionalHeader: ua.NewExtensionObject(nil)},
			SubscriptionID:      sub.id,
			NotificationMessage: &ua.NotificationMessage{SequenceNumber: sub.seq + 1, PublishTime: time.Now()},
		})
	}
	c.popPending()
	return true, c.writeMsg(b)
}

func (c *loadConn) popPending() {
	c.mu.Lock()
	c.pending = c.pending[1:]
	c.mu.Unlock()
}

// publishTemplate is a PublishResponse message encoded once, with the
// offsets of the fields that change per message.
type publishTemplate struct {
	b       []byte
	reqID   int   // sequence header RequestId
	handle  int   // ResponseHeader.RequestHandle
	seq     int   // NotificationMessage.SequenceNumber
	values  []int // the uint32 values
	changes int
}

// PublishMessage returns a PublishResponse message, encoded as one chunk,
// like those a LoadServer sends with ChangesPerMessage changes: UInt32
// values with source and server timestamps, for client handles 1 and 2 in
// turn. It is what a benchmark decodes for gopcua's decode floor.
func PublishMessage(changes int) ([]byte, error) {
	return encodePublish([]uint32{1, 2}, 1, changes, 1)
}

// encodePublish encodes a PublishResponse message of subscription subID
// with changes values v for handles in turn; v is also the request id,
// request handle and sequence number.
func encodePublish(handles []uint32, subID uint32, changes int, v uint32) ([]byte, error) {
	items := make([]*ua.MonitoredItemNotification, changes)
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range items {
		items[i] = &ua.MonitoredItemNotification{
			ClientHandle: handles[i%len(handles)],
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
				Value: ua.MustVariant(v), SourceTimestamp: ts, ServerTimestamp: ts},
		}
	}
	resp := &ua.PublishResponse{
		ResponseHeader:      &ua.ResponseHeader{Timestamp: ts, RequestHandle: v, ServiceDiagnostics: &ua.DiagnosticInfo{}, AdditionalHeader: ua.NewExtensionObject(nil)},
		SubscriptionID:      subID,
		NotificationMessage: &ua.NotificationMessage{SequenceNumber: v, PublishTime: ts, NotificationData: []*ua.ExtensionObject{ua.NewExtensionObject(&ua.DataChangeNotification{MonitoredItems: items})}},
	}
	return (&uasc.Message{
		MessageHeader: &uasc.MessageHeader{
			Header:                  uasc.NewHeader("MSG", 'F', 0),
			SymmetricSecurityHeader: uasc.NewSymmetricSecurityHeader(0),
			SequenceHeader:          uasc.NewSequenceHeader(0, v),
		},
		TypeID:  ua.NewFourByteExpandedNodeID(0, id.PublishResponse_Encoding_DefaultBinary),
		Service: resp,
	}).Encode()
}

// newPublishTemplate encodes the subscription's PublishResponse twice with
// different numbers and finds where they differ.
func newPublishTemplate(sub *loadSub, changes int) (*publishTemplate, error) {
	encode := func(v uint32) ([]byte, error) { return encodePublish(sub.handles, sub.id, changes, v) }
	a, err := encode(0x01010101)
	if err != nil {
		return nil, err
	}
	b, err := encode(0xfefefefe)
	if err != nil {
		return nil, err
	}
	if len(a) != len(b) {
		return nil, fmt.Errorf("rctest: template sizes differ")
	}
	var runs []int
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			runs = append(runs, i)
			i += 3
		}
	}
	if len(runs) != 3+changes {
		return nil, fmt.Errorf("rctest: template has %d varying fields, want %d", len(runs), 3+changes)
	}
	return &publishTemplate{b: a, reqID: runs[0], handle: runs[1], seq: runs[2], values: runs[3:], changes: changes}, nil
}

// message patches the template for one message; the result is
// overwritten by the next call.
func (t *publishTemplate) message(seq, reqID, handle uint32) []byte {
	le := binary.LittleEndian
	le.PutUint32(t.b[t.reqID:], reqID)
	le.PutUint32(t.b[t.handle:], handle)
	le.PutUint32(t.b[t.seq:], seq)
	base := (seq - 1) * uint32(t.changes)
	for i, off := range t.values {
		le.PutUint32(t.b[off:], base+uint32(i))
	}
	return t.b
}
