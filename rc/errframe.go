package rc

import (
	"encoding/binary"
	"io"
	"unicode/utf8"

	"github.com/gopcua/opcua/ua"
)

// maxReasonLength caps the Reason text of ERR frames we send.
const maxReasonLength = 4096

// AppendErrorFrame appends an OPC UA TCP Error message ("ERRF") carrying
// status and reason to b. A reason longer than 4096 bytes is cut, at a
// UTF-8 character boundary. Specification: Part 6, 7.1.2.5.
func AppendErrorFrame(b []byte, status ua.StatusCode, reason string) []byte {
	if len(reason) > maxReasonLength {
		cut := maxReasonLength
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	size := headerSize + 4 + 4 + len(reason)
	b = append(b, 'E', 'R', 'R', 'F')
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = binary.LittleEndian.AppendUint32(b, uint32(status))
	return appendString(b, reason)
}

// WriteErrorFrame writes an ERR frame to w. The caller sets any deadline.
func WriteErrorFrame(w io.Writer, status ua.StatusCode, reason string) error {
	_, err := w.Write(AppendErrorFrame(nil, status, reason))
	return err
}
