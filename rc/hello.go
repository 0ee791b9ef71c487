package rc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// Frame limits for the ReverseHello message. Specification: Part 6, 7.1.2.6.
const (
	// MaxURILength is the longest ServerUri or EndpointUrl a ReverseHello may
	// carry, in bytes.
	MaxURILength = 4096
	// MinHelloSize is the size of the smallest valid ReverseHello frame: the
	// 8-byte header and two null strings.
	MinHelloSize = headerSize + 4 + 4
	// DefaultMaxHelloSize is the largest valid ReverseHello frame: the header
	// and two strings of MaxURILength bytes each.
	DefaultMaxHelloSize = headerSize + 2*(4+MaxURILength)

	headerSize = 8
)

// Sentinel errors of the ReverseHello decoder. Every decoding error wraps
// exactly one of them.
var (
	// ErrMessageType means the frame is not a ReverseHello ("RHE").
	ErrMessageType = errors.New("rc: message type is not RHE")
	// ErrChunkType means the chunk type of the frame is not 'F'.
	ErrChunkType = errors.New("rc: chunk type is not F")
	// ErrHelloTooSmall means the declared MessageSize is below MinHelloSize.
	ErrHelloTooSmall = errors.New("rc: ReverseHello too small")
	// ErrHelloTooLarge means the declared MessageSize exceeds the size cap.
	ErrHelloTooLarge = errors.New("rc: ReverseHello too large")
	// ErrTruncated means the frame ended before a field did, either on the
	// wire or inside the declared MessageSize.
	ErrTruncated = errors.New("rc: ReverseHello truncated")
	// ErrStringTooLong means ServerUri or EndpointUrl exceeds MaxURILength.
	ErrStringTooLong = errors.New("rc: ReverseHello string too long")
	// ErrStringLength means a string length is negative but not the null
	// marker -1.
	ErrStringLength = errors.New("rc: ReverseHello string length invalid")
	// ErrInvalidUTF8 means ServerUri or EndpointUrl is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("rc: ReverseHello string is not valid UTF-8")
	// ErrTrailingBytes means the declared MessageSize covers bytes after the
	// EndpointUrl.
	ErrTrailingBytes = errors.New("rc: ReverseHello has trailing bytes")
)

// Hello is the ReverseHello message a server sends first on a reverse
// connection. Specification: Part 6, 7.1.2.6.
//
// A null string on the wire decodes as the empty string.
type Hello struct {
	// ServerURI is the ApplicationUri of the server.
	ServerURI string
	// EndpointURL is the URL the client must send back in its Hello.
	EndpointURL string
}

// AppendBinary appends the complete ReverseHello frame, header included, to
// b. It fails only when a string exceeds MaxURILength.
func (h Hello) AppendBinary(b []byte) ([]byte, error) {
	if len(h.ServerURI) > MaxURILength {
		return b, fmt.Errorf("ServerUri: %w: %d bytes", ErrStringTooLong, len(h.ServerURI))
	}
	if len(h.EndpointURL) > MaxURILength {
		return b, fmt.Errorf("EndpointUrl: %w: %d bytes", ErrStringTooLong, len(h.EndpointURL))
	}
	size := headerSize + 4 + len(h.ServerURI) + 4 + len(h.EndpointURL)
	b = append(b, 'R', 'H', 'E', 'F')
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = appendString(b, h.ServerURI)
	b = appendString(b, h.EndpointURL)
	return b, nil
}

// Encode returns the complete ReverseHello frame.
func (h Hello) Encode() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, headerSize+8+len(h.ServerURI)+len(h.EndpointURL)))
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// ReadHello reads exactly one ReverseHello frame from r and nothing more: it
// reads the 8-byte header, checks the declared size against maxSize before
// allocating, then reads exactly the rest of the frame. The remainder of the
// stream belongs to the OPC UA session, so r must not be buffered by the
// caller. maxSize <= 0 means DefaultMaxHelloSize, and a larger maxSize is
// lowered to it: no valid ReverseHello is larger, so the allocation is
// bounded whatever the caller passes.
//
// Deadlines are the caller's business (set one on the connection).
func ReadHello(r io.Reader, maxSize int) (Hello, error) {
	maxSize = effectiveMaxSize(maxSize)
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Hello{}, readErr("header", err)
	}
	size, err := checkHeader(hdr[:], maxSize)
	if err != nil {
		return Hello{}, err
	}
	frame := make([]byte, size)
	copy(frame, hdr[:])
	if _, err := io.ReadFull(r, frame[headerSize:]); err != nil {
		return Hello{}, readErr("body", err)
	}
	return decodeBody(frame[headerSize:])
}

// DecodeHello decodes one complete ReverseHello frame held in b. b must be
// exactly the frame: bytes past the declared MessageSize are an error.
// maxSize is treated as in ReadHello.
func DecodeHello(b []byte, maxSize int) (Hello, error) {
	maxSize = effectiveMaxSize(maxSize)
	if len(b) < headerSize {
		return Hello{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrTruncated, headerSize, len(b))
	}
	size, err := checkHeader(b[:headerSize], maxSize)
	if err != nil {
		return Hello{}, err
	}
	switch {
	case len(b) < size:
		return Hello{}, fmt.Errorf("%w: MessageSize %d, have %d bytes", ErrTruncated, size, len(b))
	case len(b) > size:
		return Hello{}, fmt.Errorf("%w: %d bytes after MessageSize %d", ErrTrailingBytes, len(b)-size, size)
	}
	return decodeBody(b[headerSize:])
}

func effectiveMaxSize(maxSize int) int {
	if maxSize <= 0 || maxSize > DefaultMaxHelloSize {
		return DefaultMaxHelloSize
	}
	return maxSize
}

func readErr(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: reading %s: %w", ErrTruncated, what, err)
	}
	return fmt.Errorf("rc: reading ReverseHello %s: %w", what, err)
}

// checkHeader validates the 8-byte header and returns the declared size.
func checkHeader(hdr []byte, maxSize int) (int, error) {
	if string(hdr[:3]) != "RHE" {
		return 0, fmt.Errorf("%w: %s", ErrMessageType, quoteBytes(hdr[:3]))
	}
	if hdr[3] != 'F' {
		return 0, fmt.Errorf("%w: %s", ErrChunkType, quoteBytes(hdr[3:4]))
	}
	size := binary.LittleEndian.Uint32(hdr[4:8])
	if size < MinHelloSize {
		return 0, fmt.Errorf("%w: MessageSize %d < %d", ErrHelloTooSmall, size, MinHelloSize)
	}
	if uint64(size) > uint64(maxSize) {
		return 0, fmt.Errorf("%w: MessageSize %d > %d", ErrHelloTooLarge, size, maxSize)
	}
	return int(size), nil
}

// decodeBody decodes ServerUri and EndpointUrl; body must hold nothing else.
func decodeBody(body []byte) (Hello, error) {
	var h Hello
	var err error
	if h.ServerURI, body, err = decodeString("ServerUri", body); err != nil {
		return Hello{}, err
	}
	if h.EndpointURL, body, err = decodeString("EndpointUrl", body); err != nil {
		return Hello{}, err
	}
	if len(body) > 0 {
		return Hello{}, fmt.Errorf("%w: %d bytes after EndpointUrl", ErrTrailingBytes, len(body))
	}
	return h, nil
}

func decodeString(field string, b []byte) (string, []byte, error) {
	if len(b) < 4 {
		return "", nil, fmt.Errorf("%s: %w: length needs 4 bytes, have %d", field, ErrTruncated, len(b))
	}
	n := int32(binary.LittleEndian.Uint32(b))
	b = b[4:]
	switch {
	case n == -1:
		return "", b, nil
	case n < 0:
		return "", nil, fmt.Errorf("%s: %w: %d", field, ErrStringLength, n)
	case n > MaxURILength:
		return "", nil, fmt.Errorf("%s: %w: %d > %d bytes", field, ErrStringTooLong, n, MaxURILength)
	case int(n) > len(b):
		return "", nil, fmt.Errorf("%s: %w: length %d, have %d bytes", field, ErrTruncated, n, len(b))
	}
	s := b[:n]
	if !utf8.Valid(s) {
		return "", nil, fmt.Errorf("%s %s: %w", field, quoteBytes(s), ErrInvalidUTF8)
	}
	return string(s), b[n:], nil
}

// quoteBytes quotes untrusted bytes for an error message: non-printable and
// invalid bytes are escaped, and long values are cut.
func quoteBytes(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.QuoteToASCII(string(b[:max])) + "..."
	}
	return strconv.QuoteToASCII(string(b))
}
