package mapping

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeKey(t *testing.T) {
	tests := []struct {
		syn      Syntax
		in, want string
	}{
		{NATS, "Speed", "Speed"},
		{NATS, "urn:plant:line1", "urn:plant:line1"},
		{NATS, "urn:acme.com:line 1", "urn:acme%2Ecom:line%201"},
		{NATS, "a*b>c", "a%2Ab%3Ec"},
		{NATS, "100%", "100%25"},
		{NATS, "a/b+c#d", "a/b+c#d"},
		{NATS, "$SYS", "%24SYS"},
		{NATS, "a$b", "a$b"},
		{NATS, "tab\there", "tab%09here"},
		{NATS, "Drehzahl_ü", "Drehzahl_ü"},
		{NATS, "nbsp\u00a0x", "nbsp%C2%A0x"},
		{NATS, "zw\u200bsp", "zw%E2%80%8Bsp"},
		{NATS, "bad\xffutf8", "bad%FFutf8"},
		{NATS, "del\x7f", "del%7F"},
		{NATS, "nonchar\uFFFE", "nonchar%EF%BF%BE"},
		{MQTT, "a/b+c#d", "a%2Fb%2Bc%23d"},
		{MQTT, "a.b*c>d", "a.b*c>d"},
		{MQTT, "nul\x00", "nul%00"},
		{MQTT, "$share", "%24share"},
		{MQTT, "http://example.com/UA/", "http:%2F%2Fexample.com%2FUA%2F"},
		{NATS, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.syn.String()+"/"+tt.in, func(t *testing.T) {
			got := EscapeKey(tt.syn, tt.in)
			if got != tt.want {
				t.Fatalf("EscapeKey(%s, %q) = %q, want %q", tt.syn, tt.in, got, tt.want)
			}
			back, err := UnescapeKey(got)
			if err != nil || back != tt.in {
				t.Fatalf("UnescapeKey(%q) = %q, %v; want %q", got, back, err, tt.in)
			}
		})
	}
}

// TestEscapeKeyInjective checks the properties the escaping is built for, on
// random keys drawn from an alphabet full of special characters: every
// escaped key is one valid token/level, decodes to the original, and
// distinct keys never share an escaped form.
func TestEscapeKeyInjective(t *testing.T) {
	alphabet := []string{"a", "Z", "0", ".", "*", ">", "/", "+", "#", "%", "$", " ", "\t", "\x00", "\x7f", "\xff", "ü", "\u00a0", "\u2028", "\u200b", "%2E", "%25", "&", ":", ";", "{", "}"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, syn := range []Syntax{NATS, MQTT} {
		seen := map[string]string{}
		for n := 0; n < 20000; n++ {
			var b strings.Builder
			for k := rng.IntN(6) + 1; k > 0; k-- {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			key := b.String()
			esc := EscapeKey(syn, key)
			if prev, ok := seen[esc]; ok && prev != key {
				t.Fatalf("%s: %q and %q both escape to %q", syn, prev, key, esc)
			}
			seen[esc] = key
			if strings.IndexByte(esc, syn.Separator()) >= 0 {
				t.Fatalf("%s: escaped %q contains the separator: %q", syn, key, esc)
			}
			if err := ValidateRoute(syn, "p"+string(syn.Separator())+esc); err != nil {
				t.Fatalf("%s: escaped key %q of %q is not a valid token: %v", syn, esc, key, err)
			}
			if back, err := UnescapeKey(esc); err != nil || back != key {
				t.Fatalf("%s: UnescapeKey(%q) = %q, %v; want %q", syn, esc, back, err, key)
			}
		}
	}
}

func TestUnescapeKeyErrors(t *testing.T) {
	for _, in := range []string{"%", "%2", "a%zz", "%G0"} {
		_, err := UnescapeKey(in)
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("UnescapeKey(%q) error = %v, want ErrSyntax", in, err)
		}
	}
}

func TestValidateRoute(t *testing.T) {
	long := strings.Repeat("a", MaxSubjectLen+1)
	tests := []struct {
		syn    Syntax
		route  string
		reason string // "" = valid
	}{
		{NATS, "rcbridge.line1.Speed", ""},
		{NATS, "a", ""},
		{NATS, "plant.urn:x:y.ü", ""},
		{NATS, "", "empty"},
		{NATS, ".a", "empty token at byte 0"},
		{NATS, "a..b", "empty token at byte 2"},
		{NATS, "a.", "empty token at the end"},
		{NATS, "a.*", "wildcard '*'"},
		{NATS, "a.b>", "wildcard '>'"},
		{NATS, "a b", "whitespace"},
		{NATS, "a\u00a0b", "whitespace"},
		{NATS, "a\x01b", "control character"},
		{NATS, "$SYS.x", "reserved"},
		{NATS, "a\xff", "not valid UTF-8"},
		{NATS, long, "longer than"},
		{MQTT, "rcbridge/line1/Speed", ""},
		{MQTT, "a b/c", ""},
		{MQTT, "a/+/c", "wildcard '+'"},
		{MQTT, "a/#", "wildcard '#'"},
		{MQTT, "a\x00b", "control character"},
		{MQTT, "/a", "empty level at byte 0"},
		{MQTT, "a//b", "empty level"},
		{MQTT, "a/", "empty level at the end"},
		{MQTT, "$SYS/x", "reserved"},
		{MQTT, long, ""},
		{MQTT, strings.Repeat("a", MaxTopicLen+1), "longer than"},
		{Syntax(9), "a", "unknown bus syntax"},
	}
	for _, tt := range tests {
		name := tt.route
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(tt.syn.String()+"/"+name, func(t *testing.T) {
			err := ValidateRoute(tt.syn, tt.route)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ValidateRoute(%q) = %v, want nil", tt.route, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRoute) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("ValidateRoute(%q) = %v, want ErrInvalidRoute mentioning %q", tt.route, err, tt.reason)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error message is not valid UTF-8: %q", err.Error())
			}
		})
	}
}

func TestSyntaxText(t *testing.T) {
	for _, s := range []Syntax{NATS, MQTT} {
		b, _ := s.MarshalText()
		var back Syntax
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("round trip of %v: %v, %v", s, back, err)
		}
	}
	var s Syntax
	if err := s.UnmarshalText([]byte("amqp")); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), `"amqp"`) {
		t.Fatalf("UnmarshalText(amqp) = %v", err)
	}
}

func TestErrorQuotesAreTruncated(t *testing.T) {
	err := valueErr(ErrSyntax, strings.Repeat("ü", 200), "too long")
	if len(err.Error()) > 2*maxQuoted+40 || !strings.Contains(err.Error(), `"...: too long`) {
		t.Fatalf("message not truncated: %d bytes: %s", len(err.Error()), err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatal("truncation split a rune")
	}
}
