package rc

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/ua"
)

// Admission errors. The listener and the broker wrap exactly one of them (or
// a decoding sentinel of ReadHello) in every rejection they report; StatusFor
// maps them to the status code sent in the ERR frame.
var (
	// ErrNotAllowed means the Validator does not recognize the ServerUri.
	ErrNotAllowed = errors.New("rc: server not allowed")
	// ErrEndpointURL means the EndpointUrl of a ReverseHello is not an
	// opc.tcp:// URL with a host and a port.
	ErrEndpointURL = errors.New("rc: invalid EndpointUrl")
	// ErrTooBusy means a pending-socket cap was reached: the socket was
	// evicted to make room for a newer one, or refused because no pending
	// socket could be evicted.
	ErrTooBusy = errors.New("rc: too many pending reverse connections")
	// ErrHandshakeTimeout means no complete ReverseHello arrived before the
	// first-message deadline.
	ErrHandshakeTimeout = errors.New("rc: no ReverseHello before the deadline")
	// ErrAcceptQueueFull means an admitted session found no room in the
	// Accept queue before its deadline: nobody called Accept.
	ErrAcceptQueueFull = errors.New("rc: accept queue full")
	// ErrListenerClosed is returned by Accept after Close, and reported for
	// sockets that Close cut off.
	ErrListenerClosed = errors.New("rc: listener closed")
)

// Validator decides whether a ReverseHello is admitted.
//
// Validate returns nil to admit h. A rejection should wrap ErrNotAllowed or
// ErrEndpointURL (answered with Bad_TcpEndpointUrlInvalid), or a
// ua.StatusCode to choose the status sent in the ERR frame; any other error
// is treated as ErrNotAllowed. Returning a *HelloError is welcome but not
// required.
//
// Validate is called concurrently from many goroutines, must be safe for
// that, and must not block: it runs while the socket holds a pending slot.
// The listener checks the EndpointUrl with CheckEndpointURL before calling
// Validate, so a Validator cannot forget that check.
type Validator interface {
	Validate(h Hello) error
}

// ValidatorFunc adapts a function to the Validator interface.
type ValidatorFunc func(h Hello) error

// Validate calls f(h).
func (f ValidatorFunc) Validate(h Hello) error { return f(h) }

// HelloError is a rejection of a decoded ReverseHello: the ServerUri and
// EndpointUrl it carried and why it was rejected. Err wraps one of the
// package's sentinel errors (or a ua.StatusCode from a custom Validator).
type HelloError struct {
	ServerURI   string
	EndpointURL string
	Err         error
}

// Error reports the cause and the (quoted, shortened) ReverseHello fields.
func (e *HelloError) Error() string {
	return fmt.Sprintf("%v (ServerUri %s, EndpointUrl %s)", e.Err, quoteBytes([]byte(e.ServerURI)), quoteBytes([]byte(e.EndpointURL)))
}

// Unwrap returns the cause.
func (e *HelloError) Unwrap() error { return e.Err }

// CheckEndpointURL checks the EndpointUrl of a ReverseHello: it must be
// non-empty, use the opc.tcp scheme (compared case-insensitively, as URL
// schemes are) with "//", name a host and a port in 1..65535, and carry no
// user info. The host is never resolved: it is whatever the server believes
// its own name is. Specification: Part 6, 7.1.2.6 and 7.1.2.3.
func CheckEndpointURL(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrEndpointURL)
	}
	q := quoteBytes([]byte(s))
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w %s: does not parse as a URL", ErrEndpointURL, q)
	}
	if !strings.EqualFold(u.Scheme, "opc.tcp") || u.Opaque != "" {
		return fmt.Errorf("%w %s: scheme is not opc.tcp://", ErrEndpointURL, q)
	}
	if u.User != nil {
		return fmt.Errorf("%w %s: user info is not allowed", ErrEndpointURL, q)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w %s: no host", ErrEndpointURL, q)
	}
	port := u.Port()
	if port == "" {
		return fmt.Errorf("%w %s: no port", ErrEndpointURL, q)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%w %s: port %s out of range", ErrEndpointURL, q, strconv.Quote(port))
	}
	return nil
}

// StatusFor returns the status code the listener answers an admission error
// with, in the ERR frame it sends before closing the socket. It follows
// Part 6, 7.1.2.6 (Table 77), which overrides the wording of issue 2 and the
// habit of UA-.NETStandard (Bad_TcpMessageTypeInvalid for unknown servers):
//
//   - a ua.StatusCode wrapped in err (from a custom Validator): that code;
//   - ErrNotAllowed, ErrEndpointURL, ErrStringTooLong (a ServerUri or
//     EndpointUrl that is not recognized or longer than 4096 bytes):
//     Bad_TcpEndpointUrlInvalid;
//   - ErrHelloTooLarge: Bad_TcpMessageTooLarge;
//   - every other decoding error of ReadHello: Bad_TcpMessageTypeInvalid;
//   - ErrTooBusy, ErrAcceptQueueFull, ErrListenerClosed and the Broker's
//     ErrHoldExpired, ErrHoldFull, ErrBrokerClosed: Bad_TcpServerTooBusy
//     ("try again later");
//   - ErrHandshakeTimeout: Bad_Timeout (for reporting only: the listener
//     sends no ERR to a socket that stayed silent);
//   - nil: Good; anything else: Bad_TcpInternalError.
func StatusFor(err error) ua.StatusCode {
	if err == nil {
		return ua.StatusOK
	}
	var sc ua.StatusCode
	if errors.As(err, &sc) && sc != ua.StatusOK {
		return sc
	}
	switch {
	case errors.Is(err, ErrNotAllowed), errors.Is(err, ErrEndpointURL), errors.Is(err, ErrStringTooLong):
		return ua.StatusBadTCPEndpointURLInvalid
	case errors.Is(err, ErrHelloTooLarge):
		return ua.StatusBadTCPMessageTooLarge
	case isDecodeError(err):
		return ua.StatusBadTCPMessageTypeInvalid
	case errors.Is(err, ErrTooBusy), errors.Is(err, ErrAcceptQueueFull), errors.Is(err, ErrListenerClosed),
		errors.Is(err, ErrHoldExpired), errors.Is(err, ErrHoldFull), errors.Is(err, ErrBrokerClosed):
		return ua.StatusBadTCPServerTooBusy
	case errors.Is(err, ErrHandshakeTimeout):
		return ua.StatusBadTimeout
	}
	return ua.StatusBadTCPInternalError
}

// isDecodeError reports whether err is a decoding error of ReadHello or
// DecodeHello (as opposed to an I/O error).
func isDecodeError(err error) bool {
	for _, target := range [...]error{ErrMessageType, ErrChunkType, ErrHelloTooSmall, ErrHelloTooLarge,
		ErrTruncated, ErrStringTooLong, ErrStringLength, ErrInvalidUTF8, ErrTrailingBytes} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// validate runs the checks every admitted ReverseHello passes: the
// EndpointUrl, then v. The result is nil or a *HelloError whose cause
// StatusFor maps to a Bad_Tcp* code.
func validate(v Validator, h Hello) error {
	err := CheckEndpointURL(h.EndpointURL)
	if err == nil {
		err = v.Validate(h)
	}
	if err == nil {
		return nil
	}
	var he *HelloError
	if errors.As(err, &he) && he.ServerURI == h.ServerURI && he.EndpointURL == h.EndpointURL {
		err = he.Err
	}
	var sc ua.StatusCode
	if !errors.Is(err, ErrNotAllowed) && !errors.Is(err, ErrEndpointURL) && !(errors.As(err, &sc) && sc != ua.StatusOK) {
		err = fmt.Errorf("%w: %w", ErrNotAllowed, err)
	}
	return &HelloError{ServerURI: h.ServerURI, EndpointURL: h.EndpointURL, Err: err}
}
