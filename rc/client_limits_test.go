package rc_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

// TestAnnouncedMessageSize checks the largest response the client
// announces, in its Hello (Part 6, 7.1.2.3) and in CreateSession's
// MaxResponseMessageSize (Part 4, 5.6.2): no more than the negotiated
// transport can receive through gopcua, which refuses a message of more
// chunks than the server's MaxChunkCount (512 when 0). A chunk's body is
// its size less at most 72 bytes of headers, signature and padding.
func TestAnnouncedMessageSize(t *testing.T) {
	cases := []struct {
		buffer        int
		maxChunkCount uint32
		hello, create uint32
	}{
		{8192, 0, 512 * (8192 - 72), 512 * (8192 - 72)},
		{8192, 16, 512 * (8192 - 72), 16 * (8192 - 72)},
		{16384, 0, 512 * (16384 - 72), 512 * (16384 - 72)},
		{32768, 0, 512 * (32768 - 72), 512 * (32768 - 72)},
		{32768, 4096, 512 * (32768 - 72), 16 << 20}, // capped at 16 MiB
		{65536, 0, 16 << 20, 16 << 20},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("buffer=%d/chunks=%d", tc.buffer, tc.maxChunkCount), func(t *testing.T) {
			srv := rctest.NewLoadServer(rctest.LoadOptions{MaxChunkCount: tc.maxChunkCount})
			t.Cleanup(srv.Close)
			s, _ := loadConnect(t, srv, listen(t))
			c, err := newFactory(t, rc.ClientConfig{BufferSize: tc.buffer}).Build(ctxTimeout(t, 10*time.Second), s)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close(ctxTimeout(t, 5*time.Second)) }()
			if got := srv.ClientMaxMessageSize(); got != tc.hello {
				t.Errorf("Hello MaxMessageSize = %d, want %d", got, tc.hello)
			}
			if got := srv.MaxResponseMessageSize(); got != tc.create {
				t.Errorf("CreateSession MaxResponseMessageSize = %d, want %d", got, tc.create)
			}
		})
	}
}

// TestResponseTooLarge reads a value larger than the transport can take
// (16 chunks of 8 KiB): the server, which honours MaxResponseMessageSize,
// answers Bad_ResponseTooLarge and the session stays usable, where gopcua
// would otherwise fail the request with "too many chunks". A value that
// fits in the 16 chunks is read whole.
func TestResponseTooLarge(t *testing.T) {
	for _, tc := range []struct {
		size int
		want error
	}{{120_000, nil}, {200_000, ua.StatusBadResponseTooLarge}} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			srv := rctest.NewLoadServer(rctest.LoadOptions{MaxChunkCount: 16, LargeValueSize: tc.size})
			t.Cleanup(srv.Close)
			s, _ := loadConnect(t, srv, listen(t))
			c, err := newFactory(t, rc.ClientConfig{BufferSize: 8192}).Build(ctxTimeout(t, 10*time.Second), s)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close(ctxTimeout(t, 5*time.Second)) }()
			dvs, err := c.ReadValues(ctxTimeout(t, 5*time.Second), rctest.LargeValueNode())
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadValues = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				if b, ok := dvs[0].Value.Value().([]byte); !ok || len(b) != tc.size {
					t.Fatalf("read %T of %d bytes, want %d bytes", dvs[0].Value.Value(), len(b), tc.size)
				}
			}
			if _, err := c.ReadValues(ctxTimeout(t, 5*time.Second), ua.NewNumericNodeID(0, id.Server_NamespaceArray)); err != nil {
				t.Errorf("the session after the large read: %v", err)
			}
		})
	}
}

// TestAckSendBufferLargerThanReceive: gopcua keeps the server's
// Acknowledge as its own limits, so it would refuse the server's chunks
// above its ReceiveBufferSize; the handshake fails at once, naming both.
func TestAckSendBufferLargerThanReceive(t *testing.T) {
	ln := listen(t)
	s := scripted(t, ln, "opc.tcp://plc.invalid:4840", func(conn net.Conn) {
		if _, err := readHEL(conn); err != nil {
			t.Error(err)
			return
		}
		_, _ = conn.Write(ackFrameOf(8192, 16384))
		waitClosed(conn)
	})
	_, err := newFactory(t, rc.ClientConfig{}).Build(ctxTimeout(t, 5*time.Second), s)
	if !errors.Is(err, rc.ErrHandshake) || !strings.Contains(err.Error(), "SendBufferSize 16384 larger than its ReceiveBufferSize 8192") {
		t.Errorf("Build = %v, want ErrHandshake naming SendBufferSize 16384 and ReceiveBufferSize 8192", err)
	}
}
