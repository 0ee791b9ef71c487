package mapping

import (
	"strings"
)

// Template is a parsed subject or topic template such as
// "{prefix}.{server}.{name}". Literal text is kept as written; each variable
// is replaced by its value, escaped with EscapeKey so that it is exactly one
// token or level (multi-token for {prefix} and {path}, see below). "{{" and
// "}}" stand for literal braces.
//
// Variables:
//
//	{prefix}  the bus prefix (bus.prefix), inserted verbatim: it may span
//	          several tokens and is validated on its own
//	{server}  the server's key (servers[].key, default: the escaped URI)
//	{name}    the row's name (default: NodeRef.DefaultName)
//	{path}    the row's browse path, one token per element (names only,
//	          without a leading "Objects" element); only for browse_path rows
//	{node}    the row's node reference in its canonical text, as one token
//
// The zero Template is empty and renders nothing.
type Template struct {
	text  string
	parts []tmplPart
}

type tmplVar uint8

const (
	varNone tmplVar = iota
	varPrefix
	varServer
	varName
	varPath
	varNode
)

type tmplPart struct {
	lit string
	v   tmplVar
}

// ParseTemplate parses template text. It fails on unknown variables and on
// unbalanced braces.
func ParseTemplate(s string) (Template, error) {
	t := Template{text: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tmplPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return Template{}, valueErr(ErrTemplate, s, "unmatched '}' at byte "+itoa(int64(i))+" (write '}}' for a literal brace)")
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return Template{}, valueErr(ErrTemplate, s, "unclosed '{' at byte "+itoa(int64(i)))
			}
			name := s[i+1 : i+end]
			v := lookupVar(name)
			if v == varNone {
				return Template{}, valueErr(ErrTemplate, s, "unknown variable {"+name+"}; known: {prefix} {server} {name} {path} {node}")
			}
			flush()
			t.parts = append(t.parts, tmplPart{v: v})
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

func lookupVar(name string) tmplVar {
	switch name {
	case "prefix":
		return varPrefix
	case "server":
		return varServer
	case "name":
		return varName
	case "path":
		return varPath
	case "node":
		return varNode
	}
	return varNone
}

// String returns the template text as parsed.
func (t Template) String() string { return t.text }

// IsZero reports whether t is the zero (empty) Template.
func (t Template) IsZero() bool { return t.text == "" }

// UsesPath reports whether t contains {path}.
func (t Template) UsesPath() bool {
	for _, p := range t.parts {
		if p.v == varPath {
			return true
		}
	}
	return false
}

// Vars are the values a Template is rendered with. All but Prefix are raw
// (unescaped) values; Render escapes them.
type Vars struct {
	// Prefix is inserted verbatim.
	Prefix string
	// Server is the server key.
	Server string
	// Name is the row name.
	Name string
	// Path is the browse path; nil for NodeId rows.
	Path []PathElement
	// Node is the node reference's text.
	Node string
}

// Render renders t for syn and checks the result with ValidateRoute.
func (t Template) Render(syn Syntax, v Vars) (string, error) {
	var b []byte
	for _, p := range t.parts {
		switch p.v {
		case varNone:
			b = append(b, p.lit...)
		case varPrefix:
			b = append(b, v.Prefix...)
		case varServer:
			b = AppendEscapedKey(b, syn, v.Server)
		case varName:
			b = AppendEscapedKey(b, syn, v.Name)
		case varNode:
			b = AppendEscapedKey(b, syn, v.Node)
		case varPath:
			if len(v.Path) == 0 {
				return "", valueErr(ErrTemplate, t.text, "{path} needs a browse_path row")
			}
			elems := v.Path
			if len(elems) > 1 && elems[0].Name == "Objects" && elems[0].NamespaceURI == "" && elems[0].NamespaceIndex == 0 {
				elems = elems[1:]
			}
			for i, e := range elems {
				if i > 0 {
					b = append(b, syn.Separator())
				}
				b = AppendEscapedKey(b, syn, e.Name)
			}
		}
	}
	route := string(b)
	if err := ValidateRoute(syn, route); err != nil {
		return "", err
	}
	return route, nil
}
