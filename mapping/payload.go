package mapping

import (
	"encoding/base64"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gopcua/opcua/ua"
)

// The payload codec turns an OPC UA DataValue into JSON with type fidelity.
// It appends to a caller-owned buffer and allocates nothing for scalars and
// arrays of the numeric, Boolean, String and DateTime types, so a publisher
// that reuses its buffer ([]byte[:0]) encodes without garbage.
//
// Document (PayloadJSON):
//
//	{"server":"urn:plant:line1","node":"nsu=urn:plant;s=Speed","name":"Speed",
//	 "value":1450.5,"type":"Double","status":{"code":0,"name":"Good"},
//	 "sourceTimestamp":"2025-01-02T03:04:05.1234567Z",
//	 "serverTimestamp":"2025-01-02T03:04:05.2Z"}
//
// "dimensions":[2,3] follows "type" for multi-dimensional arrays. A
// timestamp the server did not send is null. Picoseconds are not carried.
//
// Values by built-in type (Part 6, 5.1.2):
//
//	Boolean                           true / false
//	SByte Byte Int16 UInt16 Int32 UInt32  JSON numbers
//	Int64 UInt64                      decimal strings: "-9007199254740993"
//	Float Double                      numbers (shortest text that reads back
//	                                  to the same value); "NaN", "Infinity"
//	                                  and "-Infinity" as strings
//	String XmlElement                 JSON strings (invalid UTF-8 → U+FFFD)
//	DateTime                          RFC 3339 UTC with up to 7 fraction
//	                                  digits (OPC UA has 100 ns resolution);
//	                                  null for the zero DateTime
//	Guid                              "72962B91-FA75-4AE6-8D28-B404DC7DAF63"
//	ByteString                        standard base64 with padding; null for a
//	                                  null or empty ByteString (gopcua v0.8.0
//	                                  decodes both to nil)
//	NodeId                            "ns=2;s=Motor1" (namespace by index)
//	ExpandedNodeId                    "svr=1;nsu=urn:x;i=7" / "ns=2;i=7"
//	StatusCode                        {"code":2147483648,"name":"Bad"}
//	QualifiedName                     {"ns":2,"name":"Motor1"}
//	LocalizedText                     {"locale":"en","text":"Hello"}
//	ExtensionObject                   {"typeId":"i=886","body":{…}} with the
//	                                  body's fields by their OPC UA names when
//	                                  gopcua decoded it, {"typeId":…,"xml":"…"}
//	                                  for XML bodies, and "body":null when
//	                                  gopcua does not know the type (gopcua
//	                                  v0.8.0 discards unknown binary bodies)
//	DataValue                         {"value":…,"type":…,"status":…,
//	                                  "sourceTimestamp":…,"serverTimestamp":…}
//	Variant                           {"type":"Int32","value":5}
//	DiagnosticInfo                    {"symbolicId":…,"namespaceUri":…,
//	                                  "locale":…,"localizedText":…,
//	                                  "additionalInfo":…,"innerStatusCode":…,
//	                                  "innerDiagnosticInfo":…} (set fields only)
//	arrays, matrices                  JSON arrays, nested per dimension
//	null Variant                      null, with "type":"Null"

// AppendPayload appends the message for one data change of it: the JSON
// document (PayloadJSON) or the bare JSON value (PayloadValue).
func (it *Item) AppendPayload(dst []byte, dv *ua.DataValue) []byte {
	if it.Payload == PayloadValue {
		return AppendValue(dst, dataVariant(dv))
	}
	dst = append(dst, it.prelude...)
	return appendDataValueTail(dst, dv)
}

// appendPrelude pre-encodes the constant head of an item's document.
func appendPrelude(dst []byte, it *Item) []byte {
	node := it.Node
	if it.Kind == Method {
		node = it.Method
	}
	return appendHead(dst, it.ServerURI, node.String(), it.Name)
}

func appendHead(dst []byte, server, node, name string) []byte {
	dst = append(dst, `{"server":`...)
	dst = appendString(dst, server)
	dst = append(dst, `,"node":`...)
	dst = appendString(dst, node)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, name)
	return append(dst, `,"value":`...)
}

// AppendDataValue appends the JSON document for dv received from server for
// node (its reference text) under name.
func AppendDataValue(dst []byte, server, node, name string, dv *ua.DataValue) []byte {
	dst = appendHead(dst, server, node, name)
	return appendDataValueTail(dst, dv)
}

func dataVariant(dv *ua.DataValue) *ua.Variant {
	if dv == nil {
		return nil
	}
	return dv.Value
}

// appendDataValueTail appends value, type, status and timestamps and the
// closing brace; the opening brace and `"value":` are already written.
func appendDataValueTail(dst []byte, dv *ua.DataValue) []byte {
	v := dataVariant(dv)
	dst = AppendValue(dst, v)
	dst = append(dst, `,"type":"`...)
	if v == nil {
		dst = append(dst, "Null"...)
	} else {
		dst = append(dst, TypeName(v.Type())...)
	}
	dst = append(dst, '"')
	if v != nil && len(v.ArrayDimensions()) > 1 {
		dst = append(dst, `,"dimensions":[`...)
		for i, d := range v.ArrayDimensions() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(d), 10)
		}
		dst = append(dst, ']')
	}
	var status ua.StatusCode
	var src, srv time.Time
	if dv != nil {
		status, src, srv = dv.Status, dv.SourceTimestamp, dv.ServerTimestamp
	}
	dst = append(dst, `,"status":`...)
	dst = appendStatus(dst, status)
	dst = append(dst, `,"sourceTimestamp":`...)
	dst = appendTime(dst, src)
	dst = append(dst, `,"serverTimestamp":`...)
	dst = appendTime(dst, srv)
	return append(dst, '}')
}

// AppendValue appends the JSON encoding of v's value (see the table above);
// a nil or null Variant is null.
func AppendValue(dst []byte, v *ua.Variant) []byte {
	if v == nil || v.Type() == ua.TypeIDNull {
		return append(dst, "null"...)
	}
	return appendAny(dst, v.Value())
}

// appendAny encodes one Go value as produced by gopcua's decoder.
func appendAny(dst []byte, x any) []byte {
	switch x := x.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int8:
		return strconv.AppendInt(dst, int64(x), 10)
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10)
	case int16:
		return strconv.AppendInt(dst, int64(x), 10)
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10)
	case int32:
		return strconv.AppendInt(dst, int64(x), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10)
	case int64:
		dst = append(dst, '"')
		return append(strconv.AppendInt(dst, x, 10), '"')
	case uint64:
		dst = append(dst, '"')
		return append(strconv.AppendUint(dst, x, 10), '"')
	case float32:
		return appendFloat(dst, float64(x), 32)
	case float64:
		return appendFloat(dst, x, 64)
	case string:
		return appendString(dst, x)
	case time.Time:
		return appendTime(dst, x)
	case []byte:
		if x == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, '"')
		return append(base64.StdEncoding.AppendEncode(dst, x), '"')
	case ua.XMLElement:
		return appendString(dst, string(x))
	case ua.StatusCode:
		return appendStatus(dst, x)
	case *ua.GUID:
		if x == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, '"')
		return append(appendGUID(dst, x), '"')
	case *ua.NodeID:
		if x == nil {
			return append(dst, "null"...)
		}
		// String identifiers may hold any character: escape the text.
		return appendString(dst, string(appendNodeID(nil, x, true)))
	case *ua.ExpandedNodeID:
		if x == nil || x.NodeID == nil {
			return append(dst, "null"...)
		}
		return appendString(dst, string(appendExpandedNodeID(nil, x)))
	case *ua.QualifiedName:
		if x == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, `{"ns":`...)
		dst = strconv.AppendUint(dst, uint64(x.NamespaceIndex), 10)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, x.Name)
		return append(dst, '}')
	case *ua.LocalizedText:
		if x == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, `{"locale":`...)
		dst = appendString(dst, x.Locale)
		dst = append(dst, `,"text":`...)
		dst = appendString(dst, x.Text)
		return append(dst, '}')
	case *ua.ExtensionObject:
		return appendExtensionObject(dst, x)
	case *ua.DataValue:
		if x == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, `{"value":`...)
		return appendDataValueTail(dst, x)
	case *ua.Variant:
		if x == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, `{"type":"`...)
		dst = append(dst, TypeName(x.Type())...)
		dst = append(dst, `","value":`...)
		dst = AppendValue(dst, x)
		return append(dst, '}')
	case *ua.DiagnosticInfo:
		return appendDiagnosticInfo(dst, x)
	case []float64:
		return appendArray(dst, x, appendFloat64)
	case []float32:
		return appendArray(dst, x, appendFloat32)
	case []int32:
		return appendArray(dst, x, appendInt32)
	case []bool:
		return appendArray(dst, x, strconv.AppendBool)
	case []string:
		return appendArray(dst, x, appendString)
	case ua.ByteArray:
		return appendArray(dst, x, appendByte)
	}
	return appendReflect(dst, reflect.ValueOf(x))
}

// appendArray writes the common one-dimensional arrays without reflection.
func appendArray[T any](dst []byte, xs []T, elem func([]byte, T) []byte) []byte {
	dst = append(dst, '[')
	for i, x := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = elem(dst, x)
	}
	return append(dst, ']')
}

func appendFloat64(dst []byte, f float64) []byte { return appendFloat(dst, f, 64) }
func appendFloat32(dst []byte, f float32) []byte { return appendFloat(dst, float64(f), 32) }
func appendInt32(dst []byte, n int32) []byte     { return strconv.AppendInt(dst, int64(n), 10) }
func appendByte(dst []byte, c byte) []byte       { return strconv.AppendUint(dst, uint64(c), 10) }

// appendReflect encodes the remaining shapes: arrays of the other types,
// matrices, and ExtensionObject bodies (structs of gopcua's generated types,
// whose fields include named enum types). It only hands back to appendAny
// for types appendAny handles itself, so the two never loop.
func appendReflect(dst []byte, v reflect.Value) []byte {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return append(dst, "null"...)
		}
		return appendReflect(dst, v.Elem())
	case reflect.Pointer:
		switch {
		case v.IsNil():
			return append(dst, "null"...)
		case isUAType(v.Type()):
			return appendAny(dst, v.Interface())
		case v.Elem().Kind() == reflect.Struct:
			return appendStruct(dst, v.Elem())
		}
		return appendReflect(dst, v.Elem())
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[[]byte]() || v.Type() == reflect.TypeFor[ua.ByteArray]() {
			return appendAny(dst, v.Interface())
		}
		if v.IsNil() {
			return append(dst, "null"...)
		}
		dst = append(dst, '[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendReflect(dst, v.Index(i))
		}
		return append(dst, ']')
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return appendTime(dst, v.Interface().(time.Time))
		}
		return appendStruct(dst, v)
	case reflect.Bool:
		return strconv.AppendBool(dst, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32:
		return strconv.AppendInt(dst, v.Int(), 10)
	case reflect.Int64:
		dst = append(dst, '"')
		return append(strconv.AppendInt(dst, v.Int(), 10), '"')
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		if v.Type() == reflect.TypeFor[ua.StatusCode]() {
			return appendStatus(dst, ua.StatusCode(v.Uint()))
		}
		return strconv.AppendUint(dst, v.Uint(), 10)
	case reflect.Uint64:
		dst = append(dst, '"')
		return append(strconv.AppendUint(dst, v.Uint(), 10), '"')
	case reflect.Float32:
		return appendFloat(dst, v.Float(), 32)
	case reflect.Float64:
		return appendFloat(dst, v.Float(), 64)
	case reflect.String:
		return appendString(dst, v.String())
	}
	return append(dst, "null"...)
}

// isUAType reports whether t is one of the built-in types appendAny
// handles directly (their structs are not encoded field by field).
func isUAType(t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[*ua.GUID](), reflect.TypeFor[*ua.NodeID](), reflect.TypeFor[*ua.ExpandedNodeID](),
		reflect.TypeFor[*ua.QualifiedName](), reflect.TypeFor[*ua.LocalizedText](), reflect.TypeFor[*ua.ExtensionObject](),
		reflect.TypeFor[*ua.DataValue](), reflect.TypeFor[*ua.Variant](), reflect.TypeFor[*ua.DiagnosticInfo]():
		return true
	}
	return false
}

// appendStruct encodes an ExtensionObject body field by field, by the
// exported field names of gopcua's generated types (the OPC UA names).
func appendStruct(dst []byte, v reflect.Value) []byte {
	dst = append(dst, '{')
	t := v.Type()
	first := true
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, f.Name)
		dst = append(dst, ':')
		dst = appendReflect(dst, v.Field(i))
	}
	return append(dst, '}')
}

func appendExtensionObject(dst []byte, x *ua.ExtensionObject) []byte {
	if x == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, `{"typeId":`...)
	dst = appendAny(dst, x.TypeID)
	switch body := x.Value.(type) {
	case *ua.XMLElement:
		dst = append(dst, `,"xml":`...)
		if body == nil {
			dst = append(dst, "null"...)
		} else {
			dst = appendString(dst, string(*body))
		}
	case nil:
		dst = append(dst, `,"body":null`...)
	default:
		dst = append(dst, `,"body":`...)
		dst = appendReflect(dst, reflect.ValueOf(body))
	}
	return append(dst, '}')
}

func appendDiagnosticInfo(dst []byte, d *ua.DiagnosticInfo) []byte {
	if d == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	sep := func() {
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
	}
	ints := []struct {
		bit  uint8
		name string
		val  int32
	}{
		{ua.DiagnosticInfoSymbolicID, "symbolicId", d.SymbolicID},
		{ua.DiagnosticInfoNamespaceURI, "namespaceUri", d.NamespaceURI},
		{ua.DiagnosticInfoLocale, "locale", d.Locale},
		{ua.DiagnosticInfoLocalizedText, "localizedText", d.LocalizedText},
	}
	for _, f := range ints {
		if d.EncodingMask&f.bit != 0 {
			sep()
			dst = append(dst, '"')
			dst = append(dst, f.name...)
			dst = append(dst, `":`...)
			dst = strconv.AppendInt(dst, int64(f.val), 10)
		}
	}
	if d.EncodingMask&ua.DiagnosticInfoAdditionalInfo != 0 {
		sep()
		dst = append(dst, `"additionalInfo":`...)
		dst = appendString(dst, d.AdditionalInfo)
	}
	if d.EncodingMask&ua.DiagnosticInfoInnerStatusCode != 0 {
		sep()
		dst = append(dst, `"innerStatusCode":`...)
		dst = appendStatus(dst, d.InnerStatusCode)
	}
	if d.EncodingMask&ua.DiagnosticInfoInnerDiagnosticInfo != 0 {
		sep()
		dst = append(dst, `"innerDiagnosticInfo":`...)
		dst = appendDiagnosticInfo(dst, d.InnerDiagnosticInfo)
	}
	return append(dst, '}')
}

func appendStatus(dst []byte, sc ua.StatusCode) []byte {
	if sc == ua.StatusOK {
		return append(dst, `{"code":0,"name":"Good"}`...) // nearly every message
	}
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendUint(dst, uint64(sc), 10)
	dst = append(dst, `,"name":"`...)
	dst = append(dst, StatusName(sc)...)
	return append(dst, `"}`...)
}

// appendTime writes t as a quoted RFC 3339 UTC timestamp with the fraction
// trimmed of trailing zeros, exactly like time.RFC3339Nano, but computing
// the civil date directly (time.AppendFormat was most of the encoder's time).
// The zero time is null.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	secs := t.Unix()
	days := secs / 86400
	rem := secs % 86400
	if rem < 0 {
		rem += 86400
		days--
	}
	y, mo, da := civilFromDays(days)
	m, d := uint(mo), uint(da)
	if y < 0 || y > 9999 {
		// Outside what four digits can write: leave it to package time.
		dst = append(dst, '"')
		dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	hh, mm, ss := uint(rem/3600), uint(rem/60%60), uint(rem%60)
	yy := uint(y)
	dst = append(dst, '"',
		pairs[2*(yy/100)], pairs[2*(yy/100)+1], pairs[2*(yy%100)], pairs[2*(yy%100)+1], '-',
		pairs[2*m], pairs[2*m+1], '-', pairs[2*d], pairs[2*d+1], 'T',
		pairs[2*hh], pairs[2*hh+1], ':', pairs[2*mm], pairs[2*mm+1], ':', pairs[2*ss], pairs[2*ss+1])
	if ns := uint(t.Nanosecond()); ns != 0 {
		// Nine digits, then drop the trailing zeros.
		var f [10]byte
		f[0] = '.'
		f[1] = byte('0' + ns/100000000)
		r := ns % 100000000
		for i := 2; i < 10; i += 2 {
			var p uint
			switch i {
			case 2:
				p = r / 1000000
			case 4:
				p = r / 10000 % 100
			case 6:
				p = r / 100 % 100
			default:
				p = r % 100
			}
			f[i], f[i+1] = pairs[2*p], pairs[2*p+1]
		}
		n := 10
		for f[n-1] == '0' {
			n--
		}
		dst = append(dst, f[:n]...)
	}
	return append(dst, 'Z', '"')
}

// pairs holds the two-digit decimal strings 00..99 back to back.
const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian
// date (the well-known era-based algorithm: 400-year eras of 146097 days,
// years counted from March so the leap day falls last).
func civilFromDays(z int64) (year int64, month, day int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100) // [0, 365]
	mp := (5*doy + 2) / 153                  // [0, 11], March = 0
	day = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		month = int(mp + 3)
	} else {
		month = int(mp - 9)
		y++
	}
	return y, month, day
}

// appendFloat writes the shortest decimal that reads back to f at the given
// bit size; exponent form only for very large or small magnitudes, like
// JavaScript. NaN and the infinities are strings, which JSON lacks.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) || bits == 64 && (abs < 1e-6 || abs >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 → 1e-7, as JavaScript prints it.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendString writes s as a JSON string. Control characters, '"' and '\'
// are escaped, as are U+2028 and U+2029 (line separators in JavaScript);
// invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\uFFFD`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', upperHex[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendGUID writes g in the 8-4-4-4-12 upper-case form.
func appendGUID(dst []byte, g *ua.GUID) []byte {
	hexN := func(dst []byte, v uint64, digits int) []byte {
		for i := digits - 1; i >= 0; i-- {
			dst = append(dst, upperHex[(v>>(4*uint(i)))&0xf])
		}
		return dst
	}
	dst = hexN(dst, uint64(g.Data1), 8)
	dst = append(dst, '-')
	dst = hexN(dst, uint64(g.Data2), 4)
	dst = append(dst, '-')
	dst = hexN(dst, uint64(g.Data3), 4)
	dst = append(dst, '-')
	var d4 [8]byte
	copy(d4[:], g.Data4)
	for i, c := range d4 {
		if i == 2 {
			dst = append(dst, '-')
		}
		dst = append(dst, upperHex[c>>4], upperHex[c&0xf])
	}
	return dst
}

// appendNodeID writes n as NodeId text; withNS controls the "ns=<i>;" part.
func appendNodeID(dst []byte, n *ua.NodeID, withNS bool) []byte {
	if withNS && n.Namespace() != 0 {
		dst = append(dst, "ns="...)
		dst = strconv.AppendUint(dst, uint64(n.Namespace()), 10)
		dst = append(dst, ';')
	}
	switch n.Type() {
	case ua.NodeIDTypeString:
		dst = append(dst, "s="...)
		return append(dst, n.StringID()...)
	case ua.NodeIDTypeGUID:
		dst = append(dst, "g="...)
		return append(dst, n.StringID()...)
	case ua.NodeIDTypeByteString:
		dst = append(dst, "b="...)
		return append(dst, n.StringID()...)
	}
	dst = append(dst, "i="...)
	return strconv.AppendUint(dst, uint64(n.IntID()), 10)
}

// appendExpandedNodeID writes ExpandedNodeId text (Part 6, 5.3.1.11):
// "svr=<index>;" when the server index is set, then "nsu=<uri>;" when a
// namespace URI is set (';' and '%' in it percent-encoded), else "ns=<i>;".
func appendExpandedNodeID(dst []byte, x *ua.ExpandedNodeID) []byte {
	if x.ServerIndex != 0 {
		dst = append(dst, "svr="...)
		dst = strconv.AppendUint(dst, uint64(x.ServerIndex), 10)
		dst = append(dst, ';')
	}
	if x.NamespaceURI != "" {
		dst = append(dst, "nsu="...)
		dst = append(dst, pctEncodeURI(x.NamespaceURI)...)
		dst = append(dst, ';')
		return appendNodeID(dst, x.NodeID, false)
	}
	return appendNodeID(dst, x.NodeID, true)
}
