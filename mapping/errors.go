package mapping

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Sentinel errors. Every error returned by this package wraps one of them, so
// callers can test with errors.Is; messages carry the details.
var (
	// ErrSyntax reports text that does not parse: a node reference, browse
	// path, template, type name or escaped key.
	ErrSyntax = errors.New("mapping: syntax error")
	// ErrInvalidRoute reports a subject or topic the bus would refuse.
	ErrInvalidRoute = errors.New("mapping: invalid route")
	// ErrTemplate reports a route template that cannot be rendered.
	ErrTemplate = errors.New("mapping: invalid template")
	// ErrDuplicateRoute reports two rows (or a row and a status route) that
	// render the same subject or topic.
	ErrDuplicateRoute = errors.New("mapping: duplicate route")
	// ErrInvalidRow reports a row whose fields contradict each other.
	ErrInvalidRow = errors.New("mapping: invalid row")
	// ErrUnknownServer reports a server URI or key that is not configured.
	ErrUnknownServer = errors.New("mapping: unknown server")
	// ErrNamespace reports a namespace URI missing from the server's
	// NamespaceArray, or an index outside it.
	ErrNamespace = errors.New("mapping: namespace not found")
	// ErrResolve reports a node reference the server could not resolve.
	ErrResolve = errors.New("mapping: node not resolved")
	// ErrValue reports a command value that does not fit the node's type.
	ErrValue = errors.New("mapping: invalid value")
	// ErrUnsupported reports a value or type the codec cannot handle.
	ErrUnsupported = errors.New("mapping: unsupported")
	// ErrCommand reports a malformed command envelope.
	ErrCommand = errors.New("mapping: invalid command")
)

// maxQuoted caps how much of an offending value an error message repeats.
// Values can come from the bus, so they are untrusted and may be huge.
const maxQuoted = 120

// ValueError is an error about one input value. Its message is the value,
// quoted and truncated, followed by the reason:
//
//	"ns=2;x=7": unknown identifier type "x"
//
// so that a caller can prefix it with a key path. Unwrap returns one of the
// package's sentinel errors.
type ValueError struct {
	// Value is the offending input, verbatim.
	Value string
	// Reason says what is wrong with it.
	Reason string
	// Err is the sentinel error the ValueError wraps.
	Err error
}

// Error implements error.
func (e *ValueError) Error() string {
	return quote(e.Value) + ": " + e.Reason
}

// Unwrap returns the sentinel error.
func (e *ValueError) Unwrap() error { return e.Err }

func valueErr(sentinel error, value, reason string) *ValueError {
	return &ValueError{Value: value, Reason: reason, Err: sentinel}
}

// quote returns s as a Go-quoted string, truncated to maxQuoted bytes on a
// rune boundary with an ellipsis marker, safe for any input bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
