package mapping

import (
	"errors"
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"
)

func TestParseNodeID(t *testing.T) {
	tests := []struct {
		in        string
		canonical string // "" = same as in
		nodeID    string // gopcua text of NodeID(ns) with ns = [ua, urn:plant, urn:other]
		name      string
	}{
		{in: "i=85", nodeID: "i=85", name: "85"},
		{in: "ns=2;i=7", nodeID: "ns=2;i=7", name: "7"},
		{in: "ns=0;i=85", canonical: "i=85", nodeID: "i=85", name: "85"},
		{in: "ns=3;i=4294967295", nodeID: "ns=3;i=4294967295", name: "4294967295"},
		{in: "ns=300;i=70000", nodeID: "ns=300;i=70000", name: "70000"},
		{in: "nsu=urn:plant;s=Line1.Speed", nodeID: "ns=1;s=Line1.Speed", name: "Line1.Speed"},
		{in: "nsu=urn:other;i=9", nodeID: "ns=2;i=9", name: "9"},
		{in: "nsu=http://opcfoundation.org/UA/;i=2255", canonical: "i=2255", nodeID: "i=2255", name: "2255"},
		{in: "ns=1;s=a;b=c", nodeID: "ns=1;s=a;b=c", name: "a;b=c"},
		{in: "s=Hello World", nodeID: "s=Hello World", name: "Hello World"},
		{in: "ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63", canonical: "ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", nodeID: "ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", name: "72962B91-FA75-4AE6-8D28-B404DC7DAF63"},
		{in: "ns=1;b=AQID", nodeID: "ns=1;b=AQID", name: "AQID"},
	}
	ns := []string{uaNamespace, "urn:plant", "urn:other"}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseNodeID(tt.in)
			if err != nil {
				t.Fatalf("ParseNodeID(%q): %v", tt.in, err)
			}
			want := tt.canonical
			if want == "" {
				want = tt.in
			}
			if r.String() != want {
				t.Fatalf("String() = %q, want %q", r.String(), want)
			}
			again, err := ParseNodeRef(r.String())
			if err != nil || !again.Equal(r) {
				t.Fatalf("canonical text does not parse back: %v", err)
			}
			id, err := r.NodeID(ns)
			if err != nil {
				t.Fatalf("NodeID: %v", err)
			}
			if id.String() != tt.nodeID {
				t.Fatalf("NodeID = %q, want %q", id.String(), tt.nodeID)
			}
			if r.DefaultName() != tt.name {
				t.Fatalf("DefaultName = %q, want %q", r.DefaultName(), tt.name)
			}
			if r.IsBrowsePath() || r.IsZero() {
				t.Fatal("kind wrong")
			}
		})
	}
}

func TestParseNodeIDErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"ns=2;x=7", `"ns=2;x=7": unknown identifier type "x"`},
		{"", `"": empty node id`},
		{"Speed", `missing identifier type`},
		{"ns=2", `namespace without identifier`},
		{"ns=70000;i=1", `namespace index "70000" is not a number in 0..65535`},
		{"ns=-1;i=1", `not a number`},
		{"nsu=;i=1", `empty namespace URI`},
		{"nsu=urn:x", `namespace URI without identifier`},
		{"nsu=urn:%zz;i=1", `bad percent escape`},
		{"i=4294967296", `not a number in 0..4294967295`},
		{"i=-1", `not a number`},
		{"i=", `empty identifier`},
		{"g=1234", `not 8-4-4-4-12`},
		{"g=72962b91fa754ae68d28b404dc7daf63xxxx", `not 8-4-4-4-12`},
		{"b=!!", `not standard base64`},
		{"svr=1;i=1", `server index`},
		{"ns=1;ns=2;i=1", `namespace must come first`},
		{"s=" + strings.Repeat("x", 5000), `longer than 4096`},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 30)], func(t *testing.T) {
			_, err := ParseNodeID(tt.in)
			if err == nil {
				t.Fatalf("ParseNodeID(%q) succeeded", tt.in)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Value != tt.in {
				t.Fatalf("error %v is not a ValueError for the input", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not contain %q", err.Error(), tt.msg)
			}
		})
	}
}

func TestNamespaceURIEscapes(t *testing.T) {
	r, err := ParseNodeID("nsu=urn:a%3Bb%25c;i=1")
	if err != nil {
		t.Fatal(err)
	}
	if r.id.nsURI != "urn:a;b%c" {
		t.Fatalf("URI = %q", r.id.nsURI)
	}
	if r.String() != "nsu=urn:a%3Bb%25c;i=1" {
		t.Fatalf("String = %q", r.String())
	}
	if _, err := r.NodeID([]string{uaNamespace}); !errors.Is(err, ErrNamespace) {
		t.Fatalf("missing namespace: %v", err)
	}
	if _, err := r.NodeID(nil); !errors.Is(err, ErrNamespace) || !strings.Contains(err.Error(), "NamespaceArray") {
		t.Fatalf("nil namespaces: %v", err)
	}
}

func TestParseBrowsePath(t *testing.T) {
	tests := []struct {
		in        string
		canonical string
		elems     []PathElement
		qnames    string // rendered ua target names with ns [ua, urn:plant, http://example.com/UA/]
	}{
		{in: "/Objects/2:Line1/2:Motor1/2:Speed", elems: []PathElement{{Name: "Objects"}, {NamespaceIndex: 2, Name: "Line1"}, {NamespaceIndex: 2, Name: "Motor1"}, {NamespaceIndex: 2, Name: "Speed"}}, qnames: "0:Objects 2:Line1 2:Motor1 2:Speed"},
		{in: "/Objects/{urn:plant}Line1/{http://example.com/UA/}Speed", elems: []PathElement{{Name: "Objects"}, {NamespaceURI: "urn:plant", Name: "Line1"}, {NamespaceURI: "http://example.com/UA/", Name: "Speed"}}, qnames: "0:Objects 1:Line1 2:Speed"},
		{in: "/{http://opcfoundation.org/UA/}Objects", canonical: "/Objects", elems: []PathElement{{Name: "Objects"}}, qnames: "0:Objects"},
		{in: "/a&/b/c&&d", elems: []PathElement{{Name: "a/b"}, {Name: "c&d"}}, qnames: "0:a/b 0:c&d"},
		{in: "/12&:30", elems: []PathElement{{Name: "12:30"}}, qnames: "0:12:30"},
		{in: "/3:12:30", elems: []PathElement{{NamespaceIndex: 3, Name: "12:30"}}, qnames: "3:12:30"},
		{in: "/&{x}", elems: []PathElement{{Name: "{x}"}}, qnames: "0:{x}"},
		{in: "/Ob:jects", elems: []PathElement{{Name: "Ob:jects"}}, qnames: "0:Ob:jects"},
	}
	ns := []string{uaNamespace, "urn:plant", "http://example.com/UA/"}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseBrowsePath(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !r.IsBrowsePath() {
				t.Fatal("not a path")
			}
			want := tt.canonical
			if want == "" {
				want = tt.in
			}
			if r.String() != want {
				t.Fatalf("String = %q, want %q", r.String(), want)
			}
			if len(r.Path()) != len(tt.elems) {
				t.Fatalf("elements = %+v, want %+v", r.Path(), tt.elems)
			}
			for i := range tt.elems {
				if r.Path()[i] != tt.elems[i] {
					t.Fatalf("element %d = %+v, want %+v", i, r.Path()[i], tt.elems[i])
				}
			}
			again, err := ParseNodeRef(r.String())
			if err != nil || !again.Equal(r) {
				t.Fatalf("canonical text %q does not parse back: %v", r.String(), err)
			}
			bp, err := r.BrowsePath(ns)
			if err != nil {
				t.Fatal(err)
			}
			if bp.StartingNode.String() != "i=84" {
				t.Fatalf("starting node %v", bp.StartingNode)
			}
			var got []string
			for _, e := range bp.RelativePath.Elements {
				if e.ReferenceTypeID.String() != "i=33" || !e.IncludeSubtypes || e.IsInverse {
					t.Fatalf("element reference %+v", e)
				}
				got = append(got, itoa(int64(e.TargetName.NamespaceIndex))+":"+e.TargetName.Name)
			}
			if strings.Join(got, " ") != tt.qnames {
				t.Fatalf("target names %q, want %q", strings.Join(got, " "), tt.qnames)
			}
			if r.DefaultName() != tt.elems[len(tt.elems)-1].Name {
				t.Fatalf("DefaultName = %q", r.DefaultName())
			}
		})
	}
}

func TestParseBrowsePathErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"Objects/x", "starts with '/'"},
		{"/", "element 1: empty browse name"},
		{"/a//b", "element 2: empty browse name"},
		{"/a/", "element 2: empty browse name"},
		{"/2:", "empty browse name"},
		{"/{urn:x", "unclosed '{'"},
		{"/{}x", "empty namespace URI"},
		{"/99999:x", "namespace index"},
		{"/x&", "escapes nothing"},
		{strings.Repeat("/a", 65), "more than 64 elements"},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 20)], func(t *testing.T) {
			_, err := ParseBrowsePath(tt.in)
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("ParseBrowsePath(%q) = %v, want error containing %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestNodeRefText(t *testing.T) {
	var r NodeRef
	if err := r.UnmarshalText([]byte("/Objects/2:X")); err != nil || !r.IsBrowsePath() {
		t.Fatalf("path: %v", err)
	}
	if err := r.UnmarshalText([]byte("ns=2;i=7")); err != nil || r.IsBrowsePath() {
		t.Fatalf("id: %v", err)
	}
	b, _ := r.MarshalText()
	if string(b) != "ns=2;i=7" {
		t.Fatalf("MarshalText = %q", b)
	}
	if err := r.UnmarshalText([]byte("ns=2;x=7")); err == nil {
		t.Fatal("bad text accepted")
	}
	if r.String() != "ns=2;i=7" {
		t.Fatal("failed UnmarshalText changed the value")
	}
	var zero NodeRef
	if !zero.IsZero() || zero.String() != "" || zero.NeedsNamespaces() {
		t.Fatal("zero NodeRef")
	}
	if _, err := zero.NodeID(nil); !errors.Is(err, ErrResolve) {
		t.Fatal("zero NodeID")
	}
	if _, err := r.BrowsePath(nil); !errors.Is(err, ErrResolve) {
		t.Fatal("BrowsePath of a NodeId")
	}
}

func TestNodeIDEncodings(t *testing.T) {
	// The smallest binary encoding is chosen, like gopcua's parser does.
	tests := []struct {
		in   string
		want ua.NodeIDType
	}{
		{"i=255", ua.NodeIDTypeTwoByte},
		{"i=256", ua.NodeIDTypeFourByte},
		{"ns=255;i=65535", ua.NodeIDTypeFourByte},
		{"ns=256;i=1", ua.NodeIDTypeNumeric},
		{"ns=1;i=65536", ua.NodeIDTypeNumeric},
	}
	for _, tt := range tests {
		r, _ := ParseNodeID(tt.in)
		id, err := r.NodeID(nil)
		if err != nil || id.Type() != tt.want || id.String() != tt.in {
			t.Errorf("%s: %v type %v (%v), want %v", tt.in, id, id.Type(), err, tt.want)
		}
	}
}
