package rc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gopcua/opcua/uacp"
)

// capturedNodeOPCUA is the ReverseHello node-opcua 2.186.4 sent for
// applicationUri urn:peer:opcua:line1 on port 48400 of host "vm"
// (see /work/shared/NOTES-opcua.md).
var capturedNodeOPCUA = []byte("RHEF\x36\x00\x00\x00" +
	"\x14\x00\x00\x00urn:peer:opcua:line1" +
	"\x12\x00\x00\x00opc.tcp://vm:48400")

// rawString encodes an OPC UA String with an explicit length field, which
// may disagree with len(s) on purpose.
func rawString(n int32, s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(n)), s...)
}

// str encodes s as an OPC UA String.
func str(s string) []byte { return rawString(int32(len(s)), s) }

// rawFrame builds a frame with the given header and declared size.
func rawFrame(typ string, size uint32, body ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32([]byte(typ), size)
	for _, x := range body {
		b = append(b, x...)
	}
	return b
}

// fitFrame builds an RHEF frame whose declared size is its real length.
func fitFrame(body ...[]byte) []byte {
	b := rawFrame("RHEF", 0, body...)
	binary.LittleEndian.PutUint32(b[4:8], uint32(len(b)))
	return b
}

func TestHelloRoundTripRaw(t *testing.T) {
	long := strings.Repeat("u", MaxURILength)
	tests := []struct {
		name string
		h    Hello
		raw  []byte
	}{
		{"node-opcua capture", Hello{"urn:peer:opcua:line1", "opc.tcp://vm:48400"}, capturedNodeOPCUA},
		{"empty strings", Hello{}, []byte("RHEF\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"non-ASCII UTF-8", Hello{"urn:Grüße:π", "opc.tcp://[::1]:4840/ä"},
			fitFrame(str("urn:Grüße:π"), str("opc.tcp://[::1]:4840/ä"))},
		{"longest strings", Hello{long, "opc.tcp://h:1/" + long[14:]},
			fitFrame(rawString(MaxURILength, long), rawString(MaxURILength, "opc.tcp://h:1/"+long[14:]))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := tc.h.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(enc, tc.raw) {
				t.Fatalf("Encode = %q, want %q", enc, tc.raw)
			}
			app, err := tc.h.AppendBinary([]byte("prefix"))
			if err != nil || string(app) != "prefix"+string(tc.raw) {
				t.Fatalf("AppendBinary = %q, %v", app, err)
			}
			got, err := DecodeHello(tc.raw, 0)
			if err != nil || got != tc.h {
				t.Fatalf("DecodeHello = %+v, %v; want %+v", got, err, tc.h)
			}
			got, err = ReadHello(bytes.NewReader(tc.raw), 0)
			if err != nil || got != tc.h {
				t.Fatalf("ReadHello = %+v, %v; want %+v", got, err, tc.h)
			}
			// gopcua's independent decoder reads the same fields.
			var ref uacp.ReverseHello
			if _, err := ref.Decode(enc[headerSize:]); err != nil {
				t.Fatalf("uacp.ReverseHello.Decode: %v", err)
			}
			if ref.ServerURI != tc.h.ServerURI || ref.EndpointURL != tc.h.EndpointURL {
				t.Fatalf("uacp decoded %+v, want %+v", ref, tc.h)
			}
		})
	}
}

func TestHelloEncodeTooLong(t *testing.T) {
	long := strings.Repeat("x", MaxURILength+1)
	for _, h := range []Hello{{ServerURI: long}, {EndpointURL: long}} {
		if _, err := h.Encode(); !errors.Is(err, ErrStringTooLong) {
			t.Errorf("Encode(%d, %d bytes) = %v, want ErrStringTooLong", len(h.ServerURI), len(h.EndpointURL), err)
		}
	}
}

func TestDecodeNullStrings(t *testing.T) {
	raw := fitFrame(rawString(-1, ""), rawString(-1, ""))
	for name, decode := range map[string]func() (Hello, error){
		"DecodeHello": func() (Hello, error) { return DecodeHello(raw, 0) },
		"ReadHello":   func() (Hello, error) { return ReadHello(bytes.NewReader(raw), 0) },
	} {
		h, err := decode()
		if err != nil || h != (Hello{}) {
			t.Errorf("%s(null, null) = %+v, %v; want empty Hello", name, h, err)
		}
	}
}

// TestDecodeRules covers every decoding rule with its own sentinel error, for
// both ReadHello and DecodeHello.
func TestDecodeRules(t *testing.T) {
	uri := rawString(4, "urn:")
	ep := rawString(12, "opc.tcp://h:")
	tests := []struct {
		name    string
		raw     []byte
		maxSize int
		want    error
		// readOnly/decodeOnly: the rule applies to one entry point only.
		readOnly, decodeOnly bool
	}{
		{name: "HEL message type", raw: rawFrame("HELF", 32, uri, ep), want: ErrMessageType},
		{name: "ERR message type", raw: rawFrame("ERRF", 32, uri, ep), want: ErrMessageType},
		{name: "lower-case rhe", raw: rawFrame("rheF", 32, uri, ep), want: ErrMessageType},
		{name: "binary message type", raw: rawFrame("\x00\xff\x1bF", 32), want: ErrMessageType},
		{name: "chunk C", raw: rawFrame("RHEC", 32, uri, ep), want: ErrChunkType},
		{name: "chunk A", raw: rawFrame("RHEA", 32, uri, ep), want: ErrChunkType},
		{name: "size 0", raw: rawFrame("RHEF", 0), want: ErrHelloTooSmall},
		{name: "size 15", raw: rawFrame("RHEF", 15, rawString(-1, ""), []byte{0xff, 0xff, 0xff}), want: ErrHelloTooSmall},
		{name: "size above default cap", raw: rawFrame("RHEF", DefaultMaxHelloSize+1), want: ErrHelloTooLarge},
		{name: "size 4 GiB", raw: rawFrame("RHEF", math.MaxUint32), want: ErrHelloTooLarge},
		{name: "size above custom cap", raw: fitFrame(uri, ep), maxSize: 31, want: ErrHelloTooLarge},
		{name: "header cut", raw: []byte("RHEF\x20\x00"), want: ErrTruncated},
		{name: "body shorter than size", raw: rawFrame("RHEF", 40, uri, ep), want: ErrTruncated},
		{name: "string longer than frame", raw: fitFrame(rawString(30, "urn:"), ep), want: ErrTruncated},
		{name: "EndpointUrl length missing", raw: fitFrame(uri), want: ErrTruncated},
		{name: "EndpointUrl length cut", raw: fitFrame(uri, []byte{1, 0}), want: ErrTruncated},
		{name: "ServerUri 4097 bytes", raw: fitFrame(rawString(MaxURILength+1, strings.Repeat("u", MaxURILength+1)), rawString(-1, "")), want: ErrStringTooLong},
		{name: "EndpointUrl 4097 bytes", raw: fitFrame(rawString(-1, ""), rawString(MaxURILength+1, strings.Repeat("e", MaxURILength+1))), want: ErrStringTooLong},
		{name: "ServerUri length -2", raw: fitFrame(rawString(-2, ""), ep), want: ErrStringLength},
		{name: "EndpointUrl length MinInt32", raw: fitFrame(uri, rawString(math.MinInt32, "")), want: ErrStringLength},
		{name: "ServerUri not UTF-8", raw: fitFrame(rawString(4, "urn\xff"), ep), want: ErrInvalidUTF8},
		{name: "EndpointUrl surrogate", raw: fitFrame(uri, rawString(3, "\xed\xa0\x80")), want: ErrInvalidUTF8},
		{name: "trailing bytes inside size", raw: fitFrame(uri, ep, []byte("xx")), want: ErrTrailingBytes},
		{name: "bytes after frame", raw: append(fitFrame(uri, ep), 'x'), want: ErrTrailingBytes, decodeOnly: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.readOnly {
				_, err := DecodeHello(tc.raw, tc.maxSize)
				if !errors.Is(err, tc.want) {
					t.Errorf("DecodeHello: %v, want %v", err, tc.want)
				}
				if !isDecodeError(err) {
					t.Errorf("DecodeHello: %v is not a decoding error", err)
				}
			}
			if !tc.decodeOnly {
				_, err := ReadHello(bytes.NewReader(tc.raw), tc.maxSize)
				if !errors.Is(err, tc.want) {
					t.Errorf("ReadHello: %v, want %v", err, tc.want)
				}
			}
		})
	}
}

func TestDecodeErrorsQuoteSafely(t *testing.T) {
	_, err := DecodeHello(rawFrame("\x00\n\xffF", 32), 0)
	if err == nil || !strings.Contains(err.Error(), `"\x00\n\xff"`) {
		t.Errorf("error %q does not quote the message type escaped", err)
	}
	_, err = DecodeHello(fitFrame(rawString(70, strings.Repeat("\x01", 69)+"\xff"), rawString(-1, "")), 0)
	if err == nil || strings.ContainsAny(err.Error(), "\x01\xff") || !strings.Contains(err.Error(), "...") {
		t.Errorf("error %q leaks raw bytes or is not shortened", err)
	}
}

// countingReader records how far into the stream its callers reached: the
// furthest byte any Read asked for.
type countingReader struct {
	r         io.Reader
	read      int
	requested int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.requested = max(c.requested, c.read+len(p))
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func TestReadHelloReadsExactlyOneFrame(t *testing.T) {
	rest := []byte("HELF\x20\x00\x00\x00 session bytes")
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"plain":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	} {
		t.Run(name, func(t *testing.T) {
			src := bytes.NewReader(append(append([]byte{}, capturedNodeOPCUA...), rest...))
			cr := &countingReader{r: wrap(src)}
			h, err := ReadHello(cr, 0)
			if err != nil || h.ServerURI != "urn:peer:opcua:line1" {
				t.Fatalf("ReadHello = %+v, %v", h, err)
			}
			if cr.requested > len(capturedNodeOPCUA) {
				t.Errorf("asked for %d bytes, frame is %d", cr.requested, len(capturedNodeOPCUA))
			}
			left, _ := io.ReadAll(src)
			if !bytes.Equal(left, rest) {
				t.Errorf("left unread %q, want %q", left, rest)
			}
		})
	}
}

// TestReadHelloHugeSizeNoAllocation checks that the declared size is checked
// before anything is allocated for it, whatever maxSize the caller passes.
func TestReadHelloHugeSizeNoAllocation(t *testing.T) {
	raw := append(rawFrame("RHEF", math.MaxUint32), make([]byte, 64)...)
	for _, maxSize := range []int{0, DefaultMaxHelloSize, math.MaxInt} {
		cr := &countingReader{r: bytes.NewReader(raw)}
		if _, err := ReadHello(cr, maxSize); !errors.Is(err, ErrHelloTooLarge) {
			t.Fatalf("maxSize %d: %v, want ErrHelloTooLarge", maxSize, err)
		}
		if cr.requested != headerSize {
			t.Errorf("maxSize %d: asked for %d bytes, want only the %d-byte header", maxSize, cr.requested, headerSize)
		}
	}
	const runs = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(runs, func() {
		_, _ = ReadHello(bytes.NewReader(raw), math.MaxInt)
	})
	runtime.ReadMemStats(&after)
	// The error value costs a few small allocations; the 4 GiB buffer would
	// be one huge one.
	if allocs > 8 {
		t.Errorf("%.0f allocations per ReadHello, want a handful", allocs)
	}
	if perRun := (after.TotalAlloc - before.TotalAlloc) / (runs + 1); perRun > 4096 {
		t.Errorf("%d bytes allocated per ReadHello of a 4 GiB frame, want < 4096", perRun)
	}
}

func TestReadHelloIOErrors(t *testing.T) {
	if _, err := ReadHello(bytes.NewReader(nil), 0); !errors.Is(err, io.EOF) || isDecodeError(err) {
		t.Errorf("empty stream: %v, want io.EOF and no decoding error", err)
	}
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(capturedNodeOPCUA[:20]), iotest.ErrReader(boom))
	if _, err := ReadHello(r, 0); !errors.Is(err, boom) || isDecodeError(err) {
		t.Errorf("failing reader: %v, want boom", err)
	}
	if _, err := ReadHello(bytes.NewReader(capturedNodeOPCUA[:20]), 0); !errors.Is(err, ErrTruncated) {
		t.Errorf("stream ends mid-body: %v, want ErrTruncated", err)
	}
}
