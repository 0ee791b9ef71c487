package rc

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"
)

func TestCheckEndpointURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"opc.tcp://vm:48400", true},
		{"opc.tcp://192.0.2.7:4840", true},
		{"opc.tcp://[::1]:4840", true},
		{"opc.tcp://plc-3.example:4840/UA/Server", true},
		{"OPC.TCP://vm:4840", true}, // URL schemes are case-insensitive
		{"opc.tcp://vm:65535", true},
		{"", false},
		{"http://vm:4840", false},
		{"opc.https://vm:4840", false},
		{"opc.tcp:vm:4840", false},
		{"opc.tcp:/vm:4840", false},
		{"vm:4840", false},
		{"opc.tcp://vm", false},
		{"opc.tcp://vm:", false},
		{"opc.tcp://:4840", false},
		{"opc.tcp://vm:0", false},
		{"opc.tcp://vm:65536", false},
		{"opc.tcp://vm:48x0", false},
		{"opc.tcp://user:secret@vm:4840", false},
		{"opc.tcp://v m:4840", false},
		{"opc.tcp://vm:4840\x00", false},
		{"opc.tcp://[::1:4840", false},
	}
	for _, tc := range tests {
		err := CheckEndpointURL(tc.url)
		if tc.ok && err != nil {
			t.Errorf("CheckEndpointURL(%q) = %v, want nil", tc.url, err)
		}
		if !tc.ok && !errors.Is(err, ErrEndpointURL) {
			t.Errorf("CheckEndpointURL(%q) = %v, want ErrEndpointURL", tc.url, err)
		}
	}
	err := CheckEndpointURL("opc.tcp://user:secret@vm:4840")
	if !strings.Contains(err.Error(), `"opc.tcp://user:secret@vm:4840"`) {
		t.Errorf("error %q does not quote the URL", err)
	}
}

func TestAllowList(t *testing.T) {
	a, err := NewAllowList("urn:peer:opcua:line1", "urn:Plant:Line2", "urn:peer:opcua:line1")
	if err != nil {
		t.Fatal(err)
	}
	ep := "opc.tcp://vm:48400"
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"urn:peer:opcua:line1", true},
		{"urn:Plant:Line2", true},
		{"urn:plant:line2", false}, // case-sensitive
		{"urn:peer:opcua:line1 ", false},
		{"urn:peer:opcua:line", false},
		{"", false},
		{"*", false},
	} {
		err := a.Validate(Hello{ServerURI: tc.uri, EndpointURL: ep})
		if tc.ok != (err == nil) {
			t.Errorf("Validate(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
		if err != nil {
			var he *HelloError
			if !errors.As(err, &he) || he.ServerURI != tc.uri || he.EndpointURL != ep || !errors.Is(err, ErrNotAllowed) {
				t.Errorf("Validate(%q) = %#v, want *HelloError wrapping ErrNotAllowed", tc.uri, err)
			}
		}
	}
	if got := a.URIs(); len(got) != 2 || got[0] != "urn:Plant:Line2" {
		t.Errorf("URIs() = %q", got)
	}
}

func TestAllowListEmptyRejectsAll(t *testing.T) {
	empty, err := NewAllowList()
	if err != nil {
		t.Fatal(err)
	}
	var nilList *AllowList
	for name, v := range map[string]Validator{"empty": empty, "zero": &AllowList{}, "nil": nilList} {
		for _, uri := range []string{"", "urn:x", "*"} {
			if err := v.Validate(Hello{ServerURI: uri, EndpointURL: "opc.tcp://h:1"}); !errors.Is(err, ErrNotAllowed) {
				t.Errorf("%s list admitted %q: %v", name, uri, err)
			}
		}
	}
}

func TestNewAllowListReportsEveryBadEntry(t *testing.T) {
	_, err := NewAllowList("urn:ok", "", strings.Repeat("u", MaxURILength+1), "urn:\xff")
	if !errors.Is(err, ErrAllowListEntry) {
		t.Fatalf("err = %v, want ErrAllowListEntry", err)
	}
	for _, want := range []string{"[1] is empty", "[2] is 4097 bytes", `[3] "urn:\xff" is not UTF-8`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStatusFor(t *testing.T) {
	tests := []struct {
		err  error
		want ua.StatusCode
	}{
		{nil, ua.StatusOK},
		// Part 6, 7.1.2.6 (Table 77): not recognized or longer than 4096 bytes.
		{ErrNotAllowed, ua.StatusBadTCPEndpointURLInvalid},
		{&HelloError{ServerURI: "urn:x", Err: ErrNotAllowed}, ua.StatusBadTCPEndpointURLInvalid},
		{ErrEndpointURL, ua.StatusBadTCPEndpointURLInvalid},
		{fmt.Errorf("ServerUri: %w", ErrStringTooLong), ua.StatusBadTCPEndpointURLInvalid},
		{ErrHelloTooLarge, ua.StatusBadTCPMessageTooLarge},
		{ErrMessageType, ua.StatusBadTCPMessageTypeInvalid},
		{ErrChunkType, ua.StatusBadTCPMessageTypeInvalid},
		{ErrHelloTooSmall, ua.StatusBadTCPMessageTypeInvalid},
		{fmt.Errorf("%w: %w", ErrTruncated, io.ErrUnexpectedEOF), ua.StatusBadTCPMessageTypeInvalid},
		{ErrStringLength, ua.StatusBadTCPMessageTypeInvalid},
		{ErrInvalidUTF8, ua.StatusBadTCPMessageTypeInvalid},
		{ErrTrailingBytes, ua.StatusBadTCPMessageTypeInvalid},
		{ErrTooBusy, ua.StatusBadTCPServerTooBusy},
		{ErrAcceptQueueFull, ua.StatusBadTCPServerTooBusy},
		{ErrListenerClosed, ua.StatusBadTCPServerTooBusy},
		{ErrHoldExpired, ua.StatusBadTCPServerTooBusy},
		{ErrHoldFull, ua.StatusBadTCPServerTooBusy},
		{ErrBrokerClosed, ua.StatusBadTCPServerTooBusy},
		{ErrHandshakeTimeout, ua.StatusBadTimeout},
		{fmt.Errorf("custom: %w", ua.StatusBadTCPNotEnoughResources), ua.StatusBadTCPNotEnoughResources},
		{errors.New("something else"), ua.StatusBadTCPInternalError},
	}
	for _, tc := range tests {
		if got := StatusFor(tc.err); got != tc.want {
			t.Errorf("StatusFor(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestValidate covers the checks the Listener applies to every ReverseHello:
// the EndpointUrl first, then the Validator, whose errors are normalized into
// a *HelloError with a cause StatusFor understands.
func TestValidate(t *testing.T) {
	allow, _ := NewAllowList("urn:ok")
	good := Hello{ServerURI: "urn:ok", EndpointURL: "opc.tcp://vm:4840"}
	busy := ValidatorFunc(func(Hello) error { return ua.StatusBadTCPServerTooBusy })
	plain := ValidatorFunc(func(Hello) error { return errors.New("not today") })
	tests := []struct {
		name   string
		v      Validator
		h      Hello
		status ua.StatusCode
	}{
		{"admitted", allow, good, ua.StatusOK},
		{"unknown server", allow, Hello{"urn:other", good.EndpointURL}, ua.StatusBadTCPEndpointURLInvalid},
		{"http endpoint", allow, Hello{"urn:ok", "http://vm:4840"}, ua.StatusBadTCPEndpointURLInvalid},
		{"empty endpoint", allow, Hello{"urn:ok", ""}, ua.StatusBadTCPEndpointURLInvalid},
		{"validator picks status", busy, good, ua.StatusBadTCPServerTooBusy},
		{"plain validator error", plain, good, ua.StatusBadTCPEndpointURLInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.v, tc.h)
			if got := StatusFor(err); got != tc.status {
				t.Fatalf("validate: %v → %v, want %v", err, got, tc.status)
			}
			if err == nil {
				return
			}
			var he *HelloError
			if !errors.As(err, &he) || he.ServerURI != tc.h.ServerURI || he.EndpointURL != tc.h.EndpointURL {
				t.Fatalf("validate: %#v is not a *HelloError for %+v", err, tc.h)
			}
			if strings.Count(err.Error(), "ServerUri") != 1 {
				t.Errorf("error %q repeats the ReverseHello", err)
			}
		})
	}
}

func TestErrorFrame(t *testing.T) {
	b := AppendErrorFrame(nil, ua.StatusBadTCPServerTooBusy, "later")
	want := "ERRF\x15\x00\x00\x00\x00\x00\x7d\x80\x05\x00\x00\x00later"
	if string(b) != want {
		t.Fatalf("AppendErrorFrame = %q, want %q", b, want)
	}
	code, reason, err := decodeErrorFrame(b)
	if err != nil || code != ua.StatusBadTCPServerTooBusy || reason != "later" {
		t.Fatalf("decode: %v %q %v", code, reason, err)
	}
	// A long reason is cut at a character boundary and stays UTF-8.
	long := strings.Repeat("ä", maxReasonLength) // 2 bytes each
	b = AppendErrorFrame(nil, ua.StatusBadTCPInternalError, "x"+long)
	_, reason, err = decodeErrorFrame(b)
	if err != nil || len(reason) != maxReasonLength-1 || !strings.HasPrefix(reason, "xä") {
		t.Fatalf("long reason: %d bytes, %v", len(reason), err)
	}
}
