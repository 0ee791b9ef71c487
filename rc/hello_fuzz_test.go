package rc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReadHello feeds arbitrary bytes to ReadHello and DecodeHello. It
// checks that they never panic, never read past the frame, agree with each
// other, return only decoding errors or end-of-stream, and that whatever
// decodes survives an encode→decode round trip (byte for byte unless the
// frame used null strings, which decode as empty ones).
//
// `make test` runs the seeds below; `make fuzz` explores from them.
func FuzzReadHello(f *testing.F) {
	// A real ReverseHello, captured from node-opcua 2.186.4.
	f.Add(capturedNodeOPCUA)
	// The same frame followed by the session's first bytes (a Hello), which
	// ReadHello must leave unread.
	f.Add(append(append([]byte{}, capturedNodeOPCUA...), "HELF\x1c\x00\x00\x00"...))
	// Smallest valid frame: two empty strings; and two null strings.
	f.Add(fitFrame(str(""), str("")))
	f.Add(fitFrame(rawString(-1, ""), rawString(-1, "")))
	// Largest valid frame: both strings at MaxURILength.
	f.Add(fitFrame(str(strings.Repeat("u", MaxURILength)), str(strings.Repeat("e", MaxURILength))))
	// Non-ASCII UTF-8 and an IPv6 endpoint.
	f.Add(fitFrame(str("urn:Grüße:π"), str("opc.tcp://[::1]:4840/ä")))
	// Wrong message type, wrong chunk type, a 4 GiB declared size.
	f.Add(rawFrame("HELF", 32, str("urn:"), str("opc.tcp://h:")))
	f.Add(rawFrame("RHEC", 32, str("urn:"), str("opc.tcp://h:")))
	f.Add(rawFrame("RHEF", 0xFFFFFFFF))
	// Declared size below the minimum, and larger than the data.
	f.Add(rawFrame("RHEF", 15, str("")))
	f.Add(rawFrame("RHEF", 64, str("urn:x"), str("opc.tcp://h:1")))
	// String length -2, a string running past the frame, invalid UTF-8,
	// trailing bytes inside the declared size.
	f.Add(fitFrame(rawString(-2, ""), str("")))
	f.Add(fitFrame(rawString(40, "urn:"), str("")))
	f.Add(fitFrame(str("urn\xff"), str("opc.tcp://h:1")))
	f.Add(fitFrame(str("urn:x"), str("opc.tcp://h:1"), []byte{0}))
	// Nothing at all, and a header cut short.
	f.Add([]byte{})
	f.Add([]byte("RHEF\x10"))

	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		h, err := ReadHello(cr, 0)
		declared := 0
		if len(data) >= headerSize {
			declared = int(binary.LittleEndian.Uint32(data[4:8]))
		}
		if limit := max(headerSize, min(declared, DefaultMaxHelloSize)); cr.requested > limit {
			t.Fatalf("ReadHello reached byte %d, frame limit %d", cr.requested, limit)
		}
		dh, derr := DecodeHello(data, 0)
		if derr == nil && (err != nil || dh != h) {
			t.Fatalf("DecodeHello = %+v but ReadHello = %+v, %v", dh, h, err)
		}
		if derr != nil && !isDecodeError(derr) {
			t.Fatalf("DecodeHello error %v is not a decoding error", derr)
		}
		if err != nil {
			if !isDecodeError(err) && !errors.Is(err, io.EOF) {
				t.Fatalf("ReadHello error %v is neither a decoding error nor EOF", err)
			}
			return
		}
		if cr.read != declared {
			t.Fatalf("ReadHello consumed %d bytes, MessageSize is %d", cr.read, declared)
		}
		frame := data[:declared]
		if dh, derr := DecodeHello(frame, 0); derr != nil || dh != h {
			t.Fatalf("DecodeHello(frame) = %+v, %v; ReadHello = %+v", dh, derr, h)
		}
		enc, err := h.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", h, err)
		}
		h2, err := DecodeHello(enc, 0)
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v, %v; want %+v", h2, err, h)
		}
		if !hasNullString(frame) && !bytes.Equal(enc, frame) {
			t.Fatalf("Encode = %q, frame was %q", enc, frame)
		}
	})
}

// hasNullString reports whether a well-formed frame encodes ServerUri or
// EndpointUrl as a null string.
func hasNullString(frame []byte) bool {
	n1 := int32(binary.LittleEndian.Uint32(frame[8:12]))
	off := 12 + max(int(n1), 0)
	n2 := int32(binary.LittleEndian.Uint32(frame[off : off+4]))
	return n1 == -1 || n2 == -1
}
