package mapping

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gopcua/opcua/ua"
)

// Limits on node reference text, after Part 3, 8.2.4 (string identifiers of
// at most 4096 characters) with room for a namespace URI.
const (
	maxIdentifierLen = 4096
	maxPathElements  = 64
)

// uaNamespace is namespace index 0, which is fixed in every server.
const uaNamespace = "http://opcfoundation.org/UA/"

// Well-known nodes used for browse paths (Part 5 and Part 3).
const (
	rootFolderID             = 84 // i=84 RootFolder
	hierarchicalReferencesID = 33 // i=33 HierarchicalReferences
)

type refKind uint8

const (
	refNone refKind = iota
	refNodeID
	refPath
)

// NodeRef is a stable reference to a node, parsed once at load time. It is
// either a NodeId whose namespace is given by URI ("nsu=urn:plant;s=Speed")
// or by index ("ns=2;i=7"), or a browse path from the Root folder
// ("/Objects/2:Line1/{urn:plant}Motor1/Speed"). Namespace URIs are resolved
// to indexes per session (see Resolve); indexes are never stored.
//
// The zero NodeRef is "no node". NodeRef values are immutable and safe to
// share; use String for a canonical text form.
//
// NodeId text (Part 6, 5.3.1.10, strict):
//
//	[ns=<index>;|nsu=<uri>;]<i|s|g|b>=<identifier>
//
// where i= is a decimal UInt32, s= any non-empty string, g= a GUID written
// 8-4-4-4-12 in hex, b= standard base64. A ';' or '%' inside a namespace URI
// is written %3B or %25. Unlike some parsers, a missing or unknown identifier
// type is an error, never a string identifier.
//
// Browse path text: '/' followed by elements separated by '/'. Each element
// follows HierarchicalReferences (and subtypes) from the previous node,
// starting at the Root folder (i=84). An element is a browse name, optionally
// prefixed with a namespace index and ':' ("2:Motor1") or with a namespace URI
// in braces ("{http://example.com/UA/}Motor1"). '&' escapes the next
// character, so a name containing '/' is written "&/", '&' is "&&".
type NodeRef struct {
	kind refKind
	id   nodeID
	path []PathElement
}

type nodeID struct {
	nsURI  string // set: the namespace is given by URI and ns is unused
	ns     uint16
	idType ua.NodeIDType // Numeric, String, GUID or ByteString
	num    uint32
	str    string // string id; GUID in canonical upper-case text; opaque bytes
}

// PathElement is one element of a browse path: a browse name whose namespace
// is given by URI or by index.
type PathElement struct {
	// NamespaceURI, if set, names the namespace; NamespaceIndex is then 0
	// and is resolved per session.
	NamespaceURI string
	// NamespaceIndex is the namespace index when NamespaceURI is empty.
	NamespaceIndex uint16
	// Name is the browse name.
	Name string
}

// ParseNodeRef parses a NodeId or, when s starts with '/', a browse path.
func ParseNodeRef(s string) (NodeRef, error) {
	if strings.HasPrefix(s, "/") {
		return ParseBrowsePath(s)
	}
	return ParseNodeID(s)
}

// ParseNodeID parses NodeId text (see NodeRef).
func ParseNodeID(s string) (NodeRef, error) {
	bad := func(reason string) (NodeRef, error) {
		return NodeRef{}, valueErr(ErrSyntax, s, reason)
	}
	if s == "" {
		return bad("empty node id")
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8")
	}
	var id nodeID
	rest := s
	switch {
	case strings.HasPrefix(rest, "svr="):
		return bad("server index (svr=) is not supported: the node must be on the server itself")
	case strings.HasPrefix(rest, "nsu="):
		semi := strings.IndexByte(rest, ';')
		if semi < 0 {
			return bad("namespace URI without identifier: want nsu=<uri>;<type>=<id>")
		}
		uri, err := pctDecode(rest[4:semi])
		if err != nil {
			return bad("namespace URI: " + err.Error())
		}
		if uri == "" {
			return bad("empty namespace URI")
		}
		if !utf8.ValidString(uri) {
			return bad("namespace URI is not valid UTF-8 after percent-decoding")
		}
		if uri != uaNamespace {
			id.nsURI = uri
		}
		rest = rest[semi+1:]
	case strings.HasPrefix(rest, "ns="):
		semi := strings.IndexByte(rest, ';')
		if semi < 0 {
			return bad("namespace without identifier: want ns=<index>;<type>=<id>")
		}
		n, err := strconv.ParseUint(rest[3:semi], 10, 16)
		if err != nil {
			return bad("namespace index " + quote(rest[3:semi]) + " is not a number in 0..65535")
		}
		id.ns = uint16(n)
		rest = rest[semi+1:]
	}
	eq := strings.IndexByte(rest, '=')
	if eq < 0 {
		return bad("missing identifier type: want i=, s=, g= or b=")
	}
	typ, val := rest[:eq], rest[eq+1:]
	if val == "" {
		return bad("empty identifier")
	}
	if len(val) > maxIdentifierLen {
		return bad("identifier longer than " + itoa(maxIdentifierLen) + " bytes")
	}
	switch typ {
	case "i":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return bad("numeric identifier " + quote(val) + " is not a number in 0..4294967295")
		}
		id.idType, id.num = ua.NodeIDTypeNumeric, uint32(n)
	case "s":
		id.idType, id.str = ua.NodeIDTypeString, val
	case "g":
		g, ok := parseGUID(val)
		if !ok {
			return bad("GUID identifier " + quote(val) + " is not 8-4-4-4-12 hex digits")
		}
		id.idType, id.str = ua.NodeIDTypeGUID, g
	case "b":
		b, err := base64.StdEncoding.Strict().DecodeString(val)
		if err != nil || len(b) == 0 {
			return bad("opaque identifier " + quote(val) + " is not standard base64")
		}
		id.idType, id.str = ua.NodeIDTypeByteString, string(b)
	case "ns", "nsu", "svr":
		return bad("namespace must come first and only once")
	default:
		return bad("unknown identifier type " + quote(typ))
	}
	return NodeRef{kind: refNodeID, id: id}, nil
}

// parseGUID checks the 8-4-4-4-12 hex layout and returns the canonical
// upper-case text.
func parseGUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return "", false
			}
			continue
		}
		if unhex(s[i]) < 0 {
			return "", false
		}
	}
	return strings.ToUpper(s), true
}

// ParseBrowsePath parses browse path text (see NodeRef).
func ParseBrowsePath(s string) (NodeRef, error) {
	bad := func(reason string) (NodeRef, error) {
		return NodeRef{}, valueErr(ErrSyntax, s, reason)
	}
	if !strings.HasPrefix(s, "/") {
		return bad("a browse path starts with '/'")
	}
	if len(s) > maxIdentifierLen {
		return bad("browse path longer than " + itoa(maxIdentifierLen) + " bytes")
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8")
	}
	var elems []PathElement
	i := 1
	for {
		if len(elems) == maxPathElements {
			return bad("more than " + itoa(maxPathElements) + " elements")
		}
		el, next, reason := parsePathElement(s, i)
		if reason != "" {
			return bad("element " + itoa(int64(len(elems)+1)) + ": " + reason)
		}
		elems = append(elems, el)
		if next >= len(s) {
			break
		}
		i = next + 1 // skip the '/'
	}
	return NodeRef{kind: refPath, path: elems}, nil
}

// parsePathElement parses the element starting at s[i]; it returns the
// element, the index of the '/' that ends it (or len(s)) and a reason if the
// element is malformed.
func parsePathElement(s string, i int) (PathElement, int, string) {
	var el PathElement
	switch {
	case i < len(s) && s[i] == '{':
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return el, 0, "unclosed '{' namespace URI"
		}
		el.NamespaceURI = s[i+1 : i+end]
		if el.NamespaceURI == "" {
			return el, 0, "empty namespace URI"
		}
		if el.NamespaceURI == uaNamespace {
			el.NamespaceURI = ""
		}
		i += end + 1
	default:
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j > i && j < len(s) && s[j] == ':' {
			n, err := strconv.ParseUint(s[i:j], 10, 16)
			if err != nil {
				return el, 0, "namespace index " + quote(s[i:j]) + " is not in 0..65535"
			}
			el.NamespaceIndex = uint16(n)
			i = j + 1
		}
	}
	var name strings.Builder
	for ; i < len(s) && s[i] != '/'; i++ {
		if s[i] == '&' {
			if i+1 == len(s) {
				return el, 0, "'&' at the end escapes nothing"
			}
			i++
		}
		name.WriteByte(s[i])
	}
	if name.Len() == 0 {
		return el, 0, "empty browse name"
	}
	el.Name = name.String()
	return el, i, ""
}

// IsZero reports whether r is the zero NodeRef.
func (r NodeRef) IsZero() bool { return r.kind == refNone }

// IsBrowsePath reports whether r is a browse path.
func (r NodeRef) IsBrowsePath() bool { return r.kind == refPath }

// Path returns the browse path's elements (nil for a NodeId). The slice is
// shared: do not modify it.
func (r NodeRef) Path() []PathElement {
	return r.path
}

// NeedsNamespaces reports whether resolving r needs the server's
// NamespaceArray (a namespace URI appears in it).
func (r NodeRef) NeedsNamespaces() bool {
	if r.kind == refNodeID {
		return r.id.nsURI != ""
	}
	for _, e := range r.path {
		if e.NamespaceURI != "" {
			return true
		}
	}
	return false
}

// String returns the canonical text of r ("" for the zero NodeRef). It
// parses back to an equal NodeRef.
func (r NodeRef) String() string {
	switch r.kind {
	case refNodeID:
		return r.id.String()
	case refPath:
		var b strings.Builder
		for _, e := range r.path {
			b.WriteByte('/')
			prefixed := true
			switch {
			case e.NamespaceURI != "":
				b.WriteString("{" + e.NamespaceURI + "}")
			case e.NamespaceIndex != 0:
				b.WriteString(strconv.Itoa(int(e.NamespaceIndex)) + ":")
			default:
				prefixed = false
			}
			writePathName(&b, e.Name, prefixed)
		}
		return b.String()
	}
	return ""
}

func writePathName(b *strings.Builder, name string, prefixed bool) {
	// Without a namespace prefix, a leading '{' or a leading run of digits
	// followed by ':' would be read as one; escape what would be misread.
	digits := 0
	for !prefixed && digits < len(name) && name[digits] >= '0' && name[digits] <= '9' {
		digits++
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '/' || c == '&':
			b.WriteByte('&')
		case !prefixed && i == 0 && c == '{':
			b.WriteByte('&')
		case i == digits && digits > 0 && c == ':':
			b.WriteByte('&')
		}
		b.WriteByte(c)
	}
}

// MarshalText implements encoding.TextMarshaler.
func (r NodeRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseNodeRef.
func (r *NodeRef) UnmarshalText(b []byte) error {
	v, err := ParseNodeRef(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Equal reports whether r and o denote the same reference.
func (r NodeRef) Equal(o NodeRef) bool { return r.String() == o.String() }

func (id nodeID) String() string {
	var b strings.Builder
	switch {
	case id.nsURI != "":
		b.WriteString("nsu=")
		b.WriteString(pctEncodeURI(id.nsURI))
		b.WriteByte(';')
	case id.ns != 0:
		b.WriteString("ns=")
		b.WriteString(strconv.Itoa(int(id.ns)))
		b.WriteByte(';')
	}
	switch id.idType {
	case ua.NodeIDTypeNumeric:
		b.WriteString("i=")
		b.WriteString(strconv.FormatUint(uint64(id.num), 10))
	case ua.NodeIDTypeString:
		b.WriteString("s=")
		b.WriteString(id.str)
	case ua.NodeIDTypeGUID:
		b.WriteString("g=")
		b.WriteString(id.str)
	case ua.NodeIDTypeByteString:
		b.WriteString("b=")
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(id.str)))
	}
	return b.String()
}

// DefaultName is the name a row gets when it sets none: the last browse
// name of a path, or the identifier of a NodeId ("Speed" for
// "nsu=urn:x;s=Speed", "7" for "ns=2;i=7").
func (r NodeRef) DefaultName() string {
	switch r.kind {
	case refPath:
		return r.path[len(r.path)-1].Name
	case refNodeID:
		switch r.id.idType {
		case ua.NodeIDTypeNumeric:
			return strconv.FormatUint(uint64(r.id.num), 10)
		case ua.NodeIDTypeByteString:
			return base64.StdEncoding.EncodeToString([]byte(r.id.str))
		default:
			return r.id.str
		}
	}
	return ""
}

// pctDecode decodes %XX escapes (used for ';' and '%' in namespace URIs).
func pctDecode(s string) (string, error) {
	v, reason := unescapePct(s)
	if reason != "" {
		return "", errors.New(reason)
	}
	return v, nil
}

// pctEncodeURI escapes the bytes that cannot appear verbatim in nsu=.
func pctEncodeURI(s string) string {
	if !strings.ContainsAny(s, ";%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ';' || s[i] == '%' {
			b.Write(appendPct(nil, s[i]))
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// namespaceIndex maps uri to its index in namespaces.
func namespaceIndex(uri string, namespaces []string) (uint16, error) {
	if uri == "" || uri == uaNamespace {
		return 0, nil
	}
	if namespaces == nil {
		return 0, valueErr(ErrNamespace, uri, "namespace URI needs the server's NamespaceArray")
	}
	for i, u := range namespaces {
		if u == uri && i <= 0xffff {
			return uint16(i), nil
		}
	}
	return 0, valueErr(ErrNamespace, uri, "namespace URI is not in the server's NamespaceArray")
}

// NodeID returns the ua.NodeID of a NodeId reference in a session whose
// NamespaceArray is namespaces (nil is fine when r names its namespace by
// index). It fails for browse paths: use Resolve.
func (r NodeRef) NodeID(namespaces []string) (*ua.NodeID, error) {
	if r.kind != refNodeID {
		return nil, valueErr(ErrResolve, r.String(), "not a NodeId (browse paths are resolved with Resolve)")
	}
	ns := r.id.ns
	if r.id.nsURI != "" {
		var err error
		if ns, err = namespaceIndex(r.id.nsURI, namespaces); err != nil {
			return nil, err
		}
	}
	switch r.id.idType {
	case ua.NodeIDTypeNumeric:
		switch {
		case ns == 0 && r.id.num <= 0xff:
			return ua.NewTwoByteNodeID(uint8(r.id.num)), nil
		case ns <= 0xff && r.id.num <= 0xffff:
			return ua.NewFourByteNodeID(uint8(ns), uint16(r.id.num)), nil
		}
		return ua.NewNumericNodeID(ns, r.id.num), nil
	case ua.NodeIDTypeString:
		return ua.NewStringNodeID(ns, r.id.str), nil
	case ua.NodeIDTypeGUID:
		return ua.NewGUIDNodeID(ns, r.id.str), nil
	default:
		return ua.NewByteStringNodeID(ns, []byte(r.id.str)), nil
	}
}

// BrowsePath returns the ua.BrowsePath of a browse-path reference for a
// session whose NamespaceArray is namespaces (nil is fine when no element
// names a namespace URI).
func (r NodeRef) BrowsePath(namespaces []string) (*ua.BrowsePath, error) {
	if r.kind != refPath {
		return nil, valueErr(ErrResolve, r.String(), "not a browse path")
	}
	elems := make([]*ua.RelativePathElement, len(r.path))
	for i, e := range r.path {
		ns := e.NamespaceIndex
		if e.NamespaceURI != "" {
			var err error
			if ns, err = namespaceIndex(e.NamespaceURI, namespaces); err != nil {
				return nil, err
			}
		}
		elems[i] = &ua.RelativePathElement{
			ReferenceTypeID: ua.NewTwoByteNodeID(hierarchicalReferencesID),
			IncludeSubtypes: true,
			TargetName:      &ua.QualifiedName{NamespaceIndex: ns, Name: e.Name},
		}
	}
	return &ua.BrowsePath{
		StartingNode: ua.NewTwoByteNodeID(rootFolderID),
		RelativePath: &ua.RelativePath{Elements: elems},
	}, nil
}
