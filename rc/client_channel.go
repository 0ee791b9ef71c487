package rc

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"
	"github.com/gopcua/opcua/uapolicy"
	"github.com/gopcua/opcua/uasc"
)

// Connection errors.
var (
	// ErrConnectionLost means the socket under the session failed or the
	// server closed it. The session itself may still exist on the server.
	ErrConnectionLost = errors.New("rc: connection lost")
	// ErrClosed means the client was closed.
	ErrClosed = errors.New("rc: client closed")
	// ErrHandshake is wrapped by failures of the HEL/ACK exchange and of
	// OpenSecureChannel.
	ErrHandshake = errors.New("rc: channel handshake failed")
)

// Transport limits we announce in our Hello and accept in the server's
// Acknowledge. Specification: Part 6, 7.1.2.3 and 7.1.2.4.
const (
	// DefaultBufferSize is ClientConfig.BufferSize's default: the smallest
	// power of two at which gopcua's default cap of 512 chunks per message
	// admits nearly helloMaxMessageSize (512 chunk bodies of 32 KiB less
	// chunkOverhead: 15.96 MiB). BenchmarkPublishBufferSize compares it
	// with 8, 16 and 64 KiB.
	DefaultBufferSize = 32 << 10
	// helloMaxMessageSize caps the message size the client announces in
	// its Hello and CreateSession, whatever the transport could take.
	helloMaxMessageSize = 16 << 20
	// gopcuaMaxChunkCount is the chunk count gopcua accepts per received
	// message when the server's Acknowledge sets no MaxChunkCount
	// (uacp.DefaultMaxChunkCount).
	gopcuaMaxChunkCount = uacp.DefaultMaxChunkCount
	// chunkOverhead bounds what a MSG chunk carries besides its share of
	// the message body (Part 6, 6.7.2): message header 12, token id 4,
	// sequence header 8, a symmetric signature of at most 32 (HMAC-SHA256)
	// and encryption padding of less than one 16-byte block.
	chunkOverhead = 12 + 4 + 8 + 32 + 16
	minBufferSize = 8192
	// maxBufferSize caps the buffer sizes a server may announce in its ACK:
	// gopcua allocates a receive buffer of that size for every chunk.
	maxBufferSize = 4 << 20
	// errChanSize buffers gopcua's error channel; the monitor drains it.
	errChanSize = 32
)

// channelParams configures one secure channel.
type channelParams struct {
	endpointURL    string
	policy         SecurityPolicy
	mode           SecurityMode
	keyPair        KeyPair         // our application certificate, secure only
	userKey        *rsa.PrivateKey // X.509 user identity key, if any
	remoteCert     []byte          // the server certificate, secure only
	lifetime       time.Duration
	requestTimeout time.Duration
	bufferSize     uint32 // ReceiveBufferSize and SendBufferSize in the Hello
	// onLost, if set, is called once when the channel ends without being
	// closed, before Done is closed.
	onLost func(*channel, error)
}

// channel is one secure channel on one socket: the transport a session runs
// over. A session outlives its channels; the client swaps them on resume.
//
// Lifecycle: openChannel starts gopcua's dispatcher and our monitor. The
// channel ends exactly once, either lost (network failure seen by the
// monitor or by a request) or closed (close). Both close the socket and
// gopcua's channel, so every goroutine behind it returns.
type channel struct {
	log        *slog.Logger
	tcp        *net.TCPConn
	sc         *uasc.SecureChannel
	remoteCert []byte // verified server certificate, secure only
	errCh      chan error
	// maxResponse is the largest message body the transport can receive
	// (receivable), the MaxResponseMessageSize a session created on this
	// channel announces.
	maxResponse uint32

	endOnce sync.Once
	ended   chan struct{} // closed when the channel is lost or closed
	cause   error         // why it ended; written before ended is closed

	stop        chan struct{} // tells the monitor to return
	monitorDone chan struct{}
	closeOnce   sync.Once

	onLost func(*channel, error) // channelParams.onLost
	// lostCause and lostReported belong to the client's state tracker and
	// are guarded by its mutex.
	lostCause    error
	lostReported bool
}

// openChannel runs HEL/ACK with p.endpointURL on tcp and opens a secure
// channel. On failure it closes tcp.
func openChannel(ctx context.Context, tcp *net.TCPConn, p channelParams, log *slog.Logger) (_ *channel, err error) {
	fail := func(step string, err error) error {
		_ = tcp.Close()
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w: %w", ErrHandshake, step, ctx.Err(), err)
		}
		// Socket deadlines come from ctx only, so a timeout is ctx's.
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%w: %s: %w: %w", ErrHandshake, step, context.DeadlineExceeded, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrHandshake, step, err)
	}

	// gopcua's Handshake honours only a deadline; a cancelled ctx must
	// unblock it too.
	unblock := context.AfterFunc(ctx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })
	ack := uacp.Acknowledge{ // each connection gets its own copy
		ReceiveBufSize: p.bufferSize,
		SendBufSize:    p.bufferSize,
		MaxMessageSize: receivable(gopcuaMaxChunkCount, p.bufferSize, helloMaxMessageSize),
	}
	conn, err := uacp.NewConn(tcp, &ack)
	if err != nil {
		unblock()
		return nil, fail("HEL", err)
	}
	err = conn.Handshake(ctx, p.endpointURL)
	if !unblock() || err != nil {
		if err == nil {
			err = ctx.Err()
		}
		return nil, fail("HEL/ACK", err)
	}
	if err := tcp.SetDeadline(time.Time{}); err != nil {
		return nil, fail("HEL/ACK", err)
	}
	if err := checkAck(conn); err != nil {
		return nil, fail("ACK", err)
	}
	// gopcua keeps the server's Acknowledge as its own receive limits:
	// chunks up to the server's SendBufferSize (at most our Hello's
	// ReceiveBufferSize), at most its MaxChunkCount of them (512 when
	// none) and at most its MaxMessageSize (2 MiB when none) in all.
	maxResponse := receivable(conn.MaxChunkCount(), min(conn.SendBufSize(), p.bufferSize), min(conn.MaxMessageSize(), helloMaxMessageSize))

	cfg := &uasc.Config{
		SecurityPolicyURI: p.policy.URI(),
		SecurityMode:      p.mode.UA(),
		Lifetime:          uint32(p.lifetime / time.Millisecond),
		RequestTimeout:    p.requestTimeout,
		UserKey:           p.userKey,
	}
	if p.policy != SecurityPolicyNone {
		cfg.Certificate = p.keyPair.Certificate
		cfg.LocalKey = p.keyPair.PrivateKey
		cfg.RemoteCertificate = p.remoteCert
		cfg.Thumbprint = uapolicy.Thumbprint(p.remoteCert)
	}
	ch := &channel{
		log:         log,
		tcp:         tcp,
		maxResponse: maxResponse,
		errCh:       make(chan error, errChanSize),
		ended:       make(chan struct{}),
		stop:        make(chan struct{}),
		monitorDone: make(chan struct{}),
		onLost:      p.onLost,
	}
	ch.sc, err = uasc.NewSecureChannel(p.endpointURL, conn, cfg, ch.errCh)
	if err != nil {
		return nil, fail("secure channel", err)
	}
	go ch.monitor()

	// sc.Open honours ctx, but gopcua holds the request lock without one
	// while it waits; closing the socket is what always unblocks it.
	unblock = context.AfterFunc(ctx, func() { _ = tcp.Close() })
	err = ch.sc.Open(ctx)
	unblock()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil {
		err = ch.checkOpened(cfg, p)
	}
	if err != nil {
		ch.end(err)
		ch.close(ctx)
		return nil, fail("OpenSecureChannel", err)
	}
	if p.policy != SecurityPolicyNone {
		ch.remoteCert = p.remoteCert
	}
	return ch, nil
}

// checkAck rejects Acknowledge parameters that are out of the spec's range,
// would make gopcua allocate excessively, or that gopcua cannot work with:
// it keeps the server's Acknowledge as its own limits, so it refuses every
// received chunk larger than the server's ReceiveBufferSize although the
// server sends chunks up to its SendBufferSize (and gopcua sends chunks of
// the server's SendBufferSize, which the server may not receive).
func checkAck(c *uacp.Conn) error {
	for _, v := range []struct {
		name string
		n    uint32
	}{{"ReceiveBufferSize", c.ReceiveBufSize()}, {"SendBufferSize", c.SendBufSize()}} {
		if v.n < minBufferSize || v.n > maxBufferSize {
			return fmt.Errorf("server %s %d outside %d..%d", v.name, v.n, minBufferSize, maxBufferSize)
		}
	}
	if c.SendBufSize() > c.ReceiveBufSize() {
		return fmt.Errorf("server SendBufferSize %d larger than its ReceiveBufferSize %d: gopcua would refuse its larger chunks",
			c.SendBufSize(), c.ReceiveBufSize())
	}
	return nil
}

// receivable returns the largest message body that fits in chunks chunks of
// chunkSize bytes (Part 6, 6.7.2), at most limit; chunks 0 stands for
// gopcua's default. The client announces it as the largest response it
// takes, so that the server answers a larger one with Bad_ResponseTooLarge
// (Part 4, 5.6.2; Part 6, 7.1.2.3) instead of chunks gopcua refuses.
func receivable(chunks, chunkSize, limit uint32) uint32 {
	if chunks == 0 {
		chunks = gopcuaMaxChunkCount
	}
	if chunkSize <= chunkOverhead { // below minBufferSize: not negotiated
		return 1 // 0 would mean "no limit"
	}
	return uint32(min(uint64(chunks)*uint64(chunkSize-chunkOverhead), uint64(limit)))
}

// checkOpened verifies what gopcua accepted in the OpenSecureChannel
// response: gopcua takes the server's policy and certificate from the
// response itself, so they must be the ones we asked for and trust.
// Reading cfg is safe here: the dispatcher wrote it before handing over the
// response, and writes it again only on renewal.
func (ch *channel) checkOpened(cfg *uasc.Config, p channelParams) error {
	if cfg.SecurityPolicyURI != p.policy.URI() {
		return fmt.Errorf("server answered with security policy %q, want %q", cfg.SecurityPolicyURI, p.policy.URI())
	}
	if p.policy != SecurityPolicyNone && !bytes.Equal(cfg.RemoteCertificate, p.remoteCert) {
		return fmt.Errorf("server signed OpenSecureChannel with certificate %s, want the trusted %s",
			thumbprintHex(cfg.RemoteCertificate), thumbprintHex(p.remoteCert))
	}
	return nil
}

// monitor drains gopcua's error channel. gopcua pushes every non-Good
// service result there too; those are results, not failures. Only network
// errors end the channel.
func (ch *channel) monitor() {
	defer close(ch.monitorDone)
	for {
		select {
		case err := <-ch.errCh:
			if isConnectionLost(err) {
				ch.end(err)
				ch.shutdown()
				return
			}
			var status ua.StatusCode
			if !errors.As(err, &status) {
				ch.log.Debug("secure channel error", "err", err)
			}
		case <-ch.stop:
			return
		}
	}
}

// isConnectionLost reports whether err means the socket is gone or unusable.
func isConnectionLost(err error) bool {
	var status ua.StatusCode
	var netErr net.Error
	var uacpErr *uacp.Error
	switch {
	case err == nil, errors.As(err, &status):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &netErr), errors.As(err, &uacpErr):
		return true
	}
	return false
}

// end records why the channel ended; the first call wins. A loss is
// reported to onLost before ended closes, so that whoever waits for Done
// acts after the report.
func (ch *channel) end(cause error) {
	ch.endOnce.Do(func() {
		if errors.Is(cause, ErrClosed) {
			ch.cause = cause
		} else {
			ch.cause = fmt.Errorf("%w: %w", ErrConnectionLost, cause)
			if ch.onLost != nil {
				ch.onLost(ch, ch.cause)
			}
		}
		close(ch.ended)
	})
}

// err returns why the channel ended, or nil while it is usable.
func (ch *channel) err() error {
	select {
	case <-ch.ended:
		return ch.cause
	default:
		return nil
	}
}

// shutdown closes the socket first, so nothing can block on it, then
// gopcua's channel, which stops its renewal goroutines. Idempotent.
func (ch *channel) shutdown() {
	_ = ch.tcp.Close()
	_ = ch.sc.Close()
}

// close ends the channel gracefully: CloseSecureChannel, then the socket.
// ctx bounds the wait; when it expires the socket is closed regardless.
// It returns once the monitor has returned.
func (ch *channel) close(ctx context.Context) {
	ch.closeOnce.Do(func() {
		if ch.err() == nil {
			stop := context.AfterFunc(ctx, func() { _ = ch.tcp.Close() })
			_ = ch.sc.Close() // sends CloseSecureChannel
			stop()
		}
		ch.end(ErrClosed)
		ch.shutdown()
		close(ch.stop)
		<-ch.monitorDone
	})
}
