package mapping

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
)

// ErrOutOfRange reports a command value of the right kind outside the range
// of the target type (300 for a Byte). errors.Is(ErrOutOfRange, ErrValue)
// holds.
var ErrOutOfRange = fmt.Errorf("%w: out of range", ErrValue)

// maxSafeInteger is the largest integer a JSON number carries exactly in
// every consumer (2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER).
const maxSafeInteger = 1<<53 - 1

// CoercionError says why a JSON value could not become a value of the
// node's type: what was expected and what was given, and where in the value
// (for arrays and structures).
type CoercionError struct {
	// Path locates the offending part: "" for the value itself, "[2]" for an
	// array element, ".High" for a structure field.
	Path string
	// Expected describes the target type and range.
	Expected string
	// Given describes the JSON that was received (truncated).
	Given string
	// Err is ErrValue, ErrOutOfRange or ErrUnsupported.
	Err error
}

// Error implements error.
func (e *CoercionError) Error() string {
	msg := "expected " + e.Expected + ", given " + e.Given
	if e.Path != "" {
		return e.Path + ": " + msg
	}
	return msg
}

// Unwrap returns the sentinel error.
func (e *CoercionError) Unwrap() error { return e.Err }

// DecodeValue converts one JSON value into a Variant of type t, with the
// shapes the payload codec writes (see AppendValue): it is the inverse of
// AppendValue for every built-in type. Integers are range checked; Int64
// and UInt64 come as decimal strings or as numbers within ±(2^53-1); Float
// and Double accept "NaN", "Infinity" and "-Infinity"; DateTime is RFC 3339
// (converted to UTC); ByteString is standard base64. Arrays are JSON arrays,
// nested once per dimension, and must be rectangular. NodeId values must
// name their namespace by index (ns=), as the payload writes them.
func DecodeValue(data []byte, t ValueType) (*ua.Variant, error) {
	x, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	return coerceVariant(x, t, "")
}

// parseJSON decodes exactly one JSON value, keeping numbers as text.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("%w: malformed JSON: %v", ErrCommand, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: malformed JSON: data after the value", ErrCommand)
	}
	return x, nil
}

func coerceVariant(x any, t ValueType, path string) (*ua.Variant, error) {
	if t.Builtin == 0 || t.Builtin > ua.TypeIDDiagnosticInfo {
		return nil, &CoercionError{Path: path, Expected: "a writable type", Given: "a value for " + TypeName(t.Builtin), Err: ErrUnsupported}
	}
	depth, err := arrayDepth(x, t, path)
	if err != nil {
		return nil, err
	}
	if depth == 0 {
		if t.Builtin == ua.TypeIDVariant {
			// A Variant-typed scalar is the inner Variant itself.
			return coerceTypedVariant(x, path)
		}
		v, err := coerceScalar(x, t, path)
		if err != nil {
			return nil, err
		}
		return newVariant(v, path)
	}
	if t.Builtin == ua.TypeIDByteString {
		// ua.Variant.Encode in gopcua v0.8.0 writes nothing for the elements
		// of a ByteString array: the request would be corrupt.
		return nil, &CoercionError{Path: path, Expected: "a scalar ByteString (gopcua v0.8.0 cannot encode arrays of ByteString)", Given: describe(x), Err: ErrUnsupported}
	}
	dims, err := rectangular(x, depth, path)
	if err != nil {
		return nil, err
	}
	total := 1
	for _, d := range dims {
		if d == 0 && depth > 1 {
			// gopcua's decoder refuses zero dimensions (and so would the
			// server's, often): an empty matrix cannot be sent.
			return nil, &CoercionError{Path: path, Expected: "a matrix without empty dimensions", Given: describe(x), Err: ErrValue}
		}
		total *= d
		if total > ua.MaxVariantArrayLength {
			return nil, &CoercionError{Path: path, Expected: "at most " + itoa(int64(ua.MaxVariantArrayLength)) + " array elements", Given: "more", Err: ErrOutOfRange}
		}
	}
	arr, err := buildArray(x, t, depth, path)
	if err != nil {
		return nil, err
	}
	return newVariant(arr.Interface(), path)
}

func newVariant(v any, path string) (*ua.Variant, error) {
	out, err := ua.NewVariant(v)
	if err != nil {
		return nil, &CoercionError{Path: path, Expected: "a value gopcua can encode", Given: err.Error(), Err: ErrUnsupported}
	}
	return out, nil
}

// arrayDepth checks the JSON nesting against the ValueRank and returns the
// number of array dimensions. No scalar of any built-in type is written as a
// JSON array, so the nesting is the dimension count.
func arrayDepth(x any, t ValueType, path string) (int, error) {
	depth := 0
	for y := x; ; depth++ {
		a, ok := y.([]any)
		if !ok || len(a) == 0 {
			if ok {
				depth++
			}
			break
		}
		y = a[0]
	}
	ok := false
	want := ""
	switch r := t.ValueRank; {
	case r == RankScalar:
		ok, want = depth == 0, "a scalar "+TypeName(t.Builtin)
	case r == RankAny:
		ok, want = depth <= maxRank, "a "+TypeName(t.Builtin)+" or an array of up to "+itoa(maxRank)+" dimensions"
	case r == RankScalarOrOneDimension:
		ok, want = depth <= 1, "a scalar or a one-dimensional array of "+TypeName(t.Builtin)
	case r == RankOneOrMoreDimensions:
		ok, want = depth >= 1 && depth <= maxRank, "an array of "+TypeName(t.Builtin)
	case r >= 1:
		ok, want = depth == int(r), dimsNoun(int(r))+" of "+TypeName(t.Builtin)
	default:
		return 0, &CoercionError{Path: path, Expected: "a supported ValueRank", Given: "ValueRank " + itoa(int64(r)), Err: ErrUnsupported}
	}
	if !ok {
		return 0, &CoercionError{Path: path, Expected: want, Given: describe(x), Err: ErrValue}
	}
	return depth, nil
}

func dimsNoun(n int) string {
	if n == 1 {
		return "an array"
	}
	return "a " + itoa(int64(n)) + "-dimensional array (nested JSON arrays)"
}

// rectangular checks that every sub-array at one level has the same length
// and returns the dimensions.
func rectangular(x any, depth int, path string) ([]int, error) {
	dims := make([]int, depth)
	var walk func(y any, level int, p string) error
	walk = func(y any, level int, p string) error {
		a, ok := y.([]any)
		if !ok {
			return &CoercionError{Path: p, Expected: "an array (every element at one level must have the same shape)", Given: describe(y), Err: ErrValue}
		}
		if level == 0 && p == path {
			dims[0] = len(a)
		}
		if len(a) != dims[level] {
			return &CoercionError{Path: p, Expected: "an array of " + itoa(int64(dims[level])) + " elements (matrices must be rectangular)", Given: describe(y), Err: ErrValue}
		}
		if level+1 == depth {
			return nil
		}
		for i, e := range a {
			if i == 0 {
				if sub, ok := e.([]any); ok {
					dims[level+1] = len(sub)
				}
			}
			if err := walk(e, level+1, p+"["+itoa(int64(i))+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(x, 0, path); err != nil {
		return nil, err
	}
	return dims, nil
}

// elemType is the Go type gopcua uses for array elements of a built-in type.
func elemType(t ValueType) reflect.Type {
	switch t.Builtin {
	case ua.TypeIDBoolean:
		return reflect.TypeFor[bool]()
	case ua.TypeIDSByte:
		return reflect.TypeFor[int8]()
	case ua.TypeIDByte:
		return reflect.TypeFor[uint8]()
	case ua.TypeIDInt16:
		return reflect.TypeFor[int16]()
	case ua.TypeIDUint16:
		return reflect.TypeFor[uint16]()
	case ua.TypeIDInt32:
		return reflect.TypeFor[int32]()
	case ua.TypeIDUint32:
		return reflect.TypeFor[uint32]()
	case ua.TypeIDInt64:
		return reflect.TypeFor[int64]()
	case ua.TypeIDUint64:
		return reflect.TypeFor[uint64]()
	case ua.TypeIDFloat:
		return reflect.TypeFor[float32]()
	case ua.TypeIDDouble:
		return reflect.TypeFor[float64]()
	case ua.TypeIDString:
		return reflect.TypeFor[string]()
	case ua.TypeIDDateTime:
		return reflect.TypeFor[time.Time]()
	case ua.TypeIDGUID:
		return reflect.TypeFor[*ua.GUID]()
	case ua.TypeIDByteString:
		return reflect.TypeFor[[]byte]()
	case ua.TypeIDXMLElement:
		return reflect.TypeFor[ua.XMLElement]()
	case ua.TypeIDNodeID:
		return reflect.TypeFor[*ua.NodeID]()
	case ua.TypeIDExpandedNodeID:
		return reflect.TypeFor[*ua.ExpandedNodeID]()
	case ua.TypeIDStatusCode:
		return reflect.TypeFor[ua.StatusCode]()
	case ua.TypeIDQualifiedName:
		return reflect.TypeFor[*ua.QualifiedName]()
	case ua.TypeIDLocalizedText:
		return reflect.TypeFor[*ua.LocalizedText]()
	case ua.TypeIDExtensionObject:
		return reflect.TypeFor[*ua.ExtensionObject]()
	case ua.TypeIDDataValue:
		return reflect.TypeFor[*ua.DataValue]()
	case ua.TypeIDVariant:
		return reflect.TypeFor[*ua.Variant]()
	case ua.TypeIDDiagnosticInfo:
		return reflect.TypeFor[*ua.DiagnosticInfo]()
	}
	return nil
}

// buildArray builds the typed (nested) slice gopcua expects. One-dimensional
// arrays of Byte use ua.ByteArray so that they are not taken for a
// ByteString.
func buildArray(x any, t ValueType, depth int, path string) (reflect.Value, error) {
	inner := elemType(t)
	if t.Builtin == ua.TypeIDByte {
		inner = reflect.TypeFor[ua.ByteArray]()
	} else {
		inner = reflect.SliceOf(inner)
	}
	types := make([]reflect.Type, depth) // types[level] is the slice type at that level
	types[depth-1] = inner
	for l := depth - 2; l >= 0; l-- {
		types[l] = reflect.SliceOf(types[l+1])
	}
	var build func(y any, level int, p string) (reflect.Value, error)
	build = func(y any, level int, p string) (reflect.Value, error) {
		a := y.([]any) // shape checked by rectangular
		out := reflect.MakeSlice(types[level], len(a), len(a))
		for i, e := range a {
			ep := p + "[" + itoa(int64(i)) + "]"
			if level+1 < depth {
				sub, err := build(e, level+1, ep)
				if err != nil {
					return reflect.Value{}, err
				}
				out.Index(i).Set(sub)
				continue
			}
			var v any
			var err error
			if t.Builtin == ua.TypeIDVariant {
				v, err = coerceTypedVariant(e, ep)
			} else {
				v, err = coerceScalar(e, t, ep)
			}
			if err != nil {
				return reflect.Value{}, err
			}
			out.Index(i).Set(reflect.ValueOf(v))
		}
		return out, nil
	}
	return build(x, 0, path)
}

// describe renders received JSON for an error message.
func describe(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return quote(string(x))[1 : len(quote(string(x)))-1]
	case string:
		return "the string " + quote(x)
	case []any:
		return "an array of " + itoa(int64(len(x))) + " elements"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func mismatch(path, expected string, x any) error {
	return &CoercionError{Path: path, Expected: expected, Given: describe(x), Err: ErrValue}
}

func outOfRange(path, expected string, x any) error {
	return &CoercionError{Path: path, Expected: expected, Given: describe(x), Err: ErrOutOfRange}
}

// intRange describes the integer types: expected text and limits.
func intRange(id ua.TypeID) (lo int64, hi uint64, bits int, signed bool) {
	switch id {
	case ua.TypeIDSByte:
		return math.MinInt8, math.MaxInt8, 8, true
	case ua.TypeIDByte:
		return 0, math.MaxUint8, 8, false
	case ua.TypeIDInt16:
		return math.MinInt16, math.MaxInt16, 16, true
	case ua.TypeIDUint16:
		return 0, math.MaxUint16, 16, false
	case ua.TypeIDInt32:
		return math.MinInt32, math.MaxInt32, 32, true
	case ua.TypeIDUint32:
		return 0, math.MaxUint32, 32, false
	case ua.TypeIDInt64:
		return math.MinInt64, math.MaxInt64, 64, true
	}
	return 0, math.MaxUint64, 64, false
}

// coerceInt converts x to an integer of type id.
func coerceInt(x any, id ua.TypeID, path string) (any, error) {
	lo, hi, bits, signed := intRange(id)
	var want string
	if signed {
		want = TypeName(id) + " (integer " + strconv.FormatInt(lo, 10) + ".." + strconv.FormatUint(hi, 10) + ")"
	} else {
		want = TypeName(id) + " (integer 0.." + strconv.FormatUint(hi, 10) + ")"
	}
	var text string
	switch y := x.(type) {
	case json.Number:
		text = string(y)
	case string:
		if bits != 64 {
			return nil, mismatch(path, want+" as a JSON number", x)
		}
		text = y
	default:
		if bits == 64 {
			want += " as a decimal string"
		}
		return nil, mismatch(path, want, x)
	}
	if !isIntegerText(text) {
		return nil, mismatch(path, want, x)
	}
	if signed {
		n, err := strconv.ParseInt(text, 10, bits)
		if err != nil {
			return nil, outOfRange(path, want, x)
		}
		if _, isNum := x.(json.Number); isNum && (n > maxSafeInteger || n < -maxSafeInteger) {
			return nil, outOfRange(path, want+"; numbers beyond ±(2^53-1) lose precision in JSON, send a decimal string", x)
		}
		switch id {
		case ua.TypeIDSByte:
			return int8(n), nil
		case ua.TypeIDInt16:
			return int16(n), nil
		case ua.TypeIDInt32:
			return int32(n), nil
		}
		return n, nil
	}
	if strings.HasPrefix(text, "-") {
		if text == "-0" {
			text = "0"
		} else {
			return nil, outOfRange(path, want, x)
		}
	}
	n, err := strconv.ParseUint(text, 10, bits)
	if err != nil {
		return nil, outOfRange(path, want, x)
	}
	if _, isNum := x.(json.Number); isNum && n > maxSafeInteger {
		return nil, outOfRange(path, want+"; numbers beyond 2^53-1 lose precision in JSON, send a decimal string", x)
	}
	switch id {
	case ua.TypeIDByte:
		return uint8(n), nil
	case ua.TypeIDUint16:
		return uint16(n), nil
	case ua.TypeIDUint32:
		return uint32(n), nil
	}
	return n, nil
}

// isIntegerText reports whether s is an optional '-' and decimal digits.
func isIntegerText(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func coerceFloat(x any, bits int, path string) (float64, error) {
	want := "Double (a JSON number, or \"NaN\", \"Infinity\", \"-Infinity\")"
	if bits == 32 {
		want = "Float (a JSON number of magnitude at most 3.4028235e38, or \"NaN\", \"Infinity\", \"-Infinity\")"
	}
	switch y := x.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(y), bits)
		if err != nil {
			return 0, outOfRange(path, want, x)
		}
		return f, nil
	case string:
		switch y {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, mismatch(path, want, x)
}

// DateTime limits. OPC UA DateTime spans 1601..9999 (Part 6, 5.2.2.5), but
// gopcua v0.8.0 encodes through time.UnixNano, which is only defined from
// 1677-09-21 to 2262-04-11: outside that range it would send a wrong date,
// so such values are refused.
func dateTimeRange() (lo, hi time.Time) {
	return time.Unix(0, math.MinInt64).UTC(), time.Unix(0, math.MaxInt64).UTC()
}

func coerceTime(x any, path string) (time.Time, error) {
	const want = "DateTime (RFC 3339 text such as \"2025-01-02T03:04:05.5Z\", or null)"
	switch y := x.(type) {
	case nil:
		return time.Time{}, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, y)
		if err != nil {
			return time.Time{}, mismatch(path, want, x)
		}
		t = t.UTC()
		if lo, hi := dateTimeRange(); t.Before(lo) || t.After(hi) {
			return time.Time{}, outOfRange(path, "DateTime between "+lo.Format(time.RFC3339)+" and "+hi.Format(time.RFC3339)+" (what gopcua can encode)", x)
		}
		return t, nil
	}
	return time.Time{}, mismatch(path, want, x)
}

func coerceString(x any, id ua.TypeID, path string) (string, error) {
	switch y := x.(type) {
	case string:
		return y, nil
	case nil:
		return "", nil
	}
	return "", mismatch(path, TypeName(id)+" (a JSON string)", x)
}

// coerceScalar converts one JSON scalar (never an array) to the Go value
// gopcua uses for built-in type t.Builtin.
func coerceScalar(x any, t ValueType, path string) (any, error) {
	switch id := t.Builtin; id {
	case ua.TypeIDBoolean:
		if b, ok := x.(bool); ok {
			return b, nil
		}
		return nil, mismatch(path, "Boolean (true or false)", x)
	case ua.TypeIDSByte, ua.TypeIDByte, ua.TypeIDInt16, ua.TypeIDUint16, ua.TypeIDInt32, ua.TypeIDUint32, ua.TypeIDInt64, ua.TypeIDUint64:
		return coerceInt(x, id, path)
	case ua.TypeIDFloat:
		f, err := coerceFloat(x, 32, path)
		return float32(f), err
	case ua.TypeIDDouble:
		return coerceFloat(x, 64, path)
	case ua.TypeIDString:
		return coerceString(x, id, path)
	case ua.TypeIDXMLElement:
		s, err := coerceString(x, id, path)
		return ua.XMLElement(s), err
	case ua.TypeIDDateTime:
		return coerceTime(x, path)
	case ua.TypeIDGUID:
		if s, ok := x.(string); ok {
			if g, ok := parseGUID(s); ok {
				return ua.NewGUID(g), nil
			}
		}
		return nil, mismatch(path, "Guid (text such as \"72962B91-FA75-4AE6-8D28-B404DC7DAF63\")", x)
	case ua.TypeIDByteString:
		switch y := x.(type) {
		case nil:
			return []byte(nil), nil
		case string:
			b, err := base64.StdEncoding.Strict().DecodeString(y)
			if err == nil {
				if b == nil {
					b = []byte{}
				}
				return b, nil
			}
		}
		return nil, mismatch(path, "ByteString (standard base64 text, or null)", x)
	case ua.TypeIDNodeID:
		return coerceNodeID(x, path)
	case ua.TypeIDExpandedNodeID:
		return coerceExpandedNodeID(x, path)
	case ua.TypeIDStatusCode:
		return coerceStatus(x, path)
	case ua.TypeIDQualifiedName:
		return coerceQualifiedName(x, path)
	case ua.TypeIDLocalizedText:
		return coerceLocalizedText(x, path)
	case ua.TypeIDExtensionObject:
		return coerceExtensionObject(x, t, path)
	case ua.TypeIDDataValue:
		return coerceDataValue(x, path)
	case ua.TypeIDVariant:
		return coerceTypedVariant(x, path)
	case ua.TypeIDDiagnosticInfo:
		return coerceDiagnosticInfo(x, path, 0)
	}
	return nil, &CoercionError{Path: path, Expected: "a supported type", Given: "a value for " + TypeName(t.Builtin), Err: ErrUnsupported}
}
