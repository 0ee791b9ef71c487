package mapping

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"
)

func vt(id ua.TypeID, rank int32) ValueType { return ValueType{Builtin: id, ValueRank: rank} }

func TestDecodeValueErrors(t *testing.T) {
	big := "[" + strings.Repeat("1,", ua.MaxVariantArrayLength) + "1]"
	tests := []struct {
		typ  ValueType
		json string
		msg  string
		is   error
	}{
		{vt(ua.TypeIDByte, -1), `300`, "expected Byte (integer 0..255), given 300", ErrOutOfRange},
		{vt(ua.TypeIDByte, -1), `-1`, "expected Byte (integer 0..255), given -1", ErrOutOfRange},
		{vt(ua.TypeIDSByte, -1), `128`, "expected SByte (integer -128..127), given 128", ErrOutOfRange},
		{vt(ua.TypeIDInt32, -1), `1.5`, "expected Int32 (integer -2147483648..2147483647), given 1.5", ErrValue},
		{vt(ua.TypeIDInt32, -1), `1e3`, "given 1e3", ErrValue},
		{vt(ua.TypeIDInt32, -1), `"5"`, `as a JSON number, given the string "5"`, ErrValue},
		{vt(ua.TypeIDUint16, -1), `true`, "expected UInt16 (integer 0..65535), given true", ErrValue},
		{vt(ua.TypeIDInt64, -1), `9007199254740993`, "send a decimal string", ErrOutOfRange},
		{vt(ua.TypeIDInt64, -1), `"9223372036854775808"`, "expected Int64 (integer -9223372036854775808..9223372036854775807)", ErrOutOfRange},
		{vt(ua.TypeIDInt64, -1), `"12a"`, "expected Int64", ErrValue},
		{vt(ua.TypeIDInt64, -1), `null`, "as a decimal string, given null", ErrValue},
		{vt(ua.TypeIDUint64, -1), `"-1"`, "expected UInt64 (integer 0..18446744073709551615)", ErrOutOfRange},
		{vt(ua.TypeIDFloat, -1), `1e39`, "expected Float (a JSON number of magnitude at most 3.4028235e38", ErrOutOfRange},
		{vt(ua.TypeIDDouble, -1), `"abc"`, `expected Double (a JSON number, or "NaN", "Infinity", "-Infinity"), given the string "abc"`, ErrValue},
		{vt(ua.TypeIDDouble, -1), `1e400`, "expected Double", ErrOutOfRange},
		{vt(ua.TypeIDBoolean, -1), `"true"`, `expected Boolean (true or false), given the string "true"`, ErrValue},
		{vt(ua.TypeIDString, -1), `5`, "expected String (a JSON string), given 5", ErrValue},
		{vt(ua.TypeIDDateTime, -1), `"yesterday"`, "expected DateTime (RFC 3339 text", ErrValue},
		{vt(ua.TypeIDDateTime, -1), `"1601-01-01T00:00:00Z"`, "expected DateTime between 1677-09-21", ErrOutOfRange},
		{vt(ua.TypeIDGUID, -1), `"x"`, "expected Guid", ErrValue},
		{vt(ua.TypeIDByteString, -1), `"!!"`, "expected ByteString (standard base64 text, or null)", ErrValue},
		{vt(ua.TypeIDByteString, 1), `["AQ=="]`, "gopcua v0.8.0 cannot encode arrays of ByteString", ErrUnsupported},
		{vt(ua.TypeIDNodeID, -1), `"nsu=urn:x;i=1"`, "namespace as an index (ns=)", ErrValue},
		{vt(ua.TypeIDNodeID, -1), `"ns=2;x=1"`, `unknown identifier type "x"`, ErrValue},
		{vt(ua.TypeIDExpandedNodeID, -1), `"svr=x;i=1"`, "expected ExpandedNodeId", ErrValue},
		{vt(ua.TypeIDStatusCode, -1), `"NoSuchStatus"`, "expected StatusCode", ErrValue},
		{vt(ua.TypeIDStatusCode, -1), `{"name":"Good"}`, "expected StatusCode", ErrValue},
		{vt(ua.TypeIDQualifiedName, -1), `{"ns":1,"name":"x","extra":1}`, `given member "extra"`, ErrValue},
		{vt(ua.TypeIDQualifiedName, -1), `{"ns":70000,"name":"x"}`, `.ns: expected UInt16`, ErrOutOfRange},
		{vt(ua.TypeIDLocalizedText, -1), `5`, "expected LocalizedText", ErrValue},
		{vt(ua.TypeIDVariant, -1), `{"type":"Bogus","value":1}`, `.type: expected a built-in type name such as "Double", given the string "Bogus"`, ErrValue},
		{vt(ua.TypeIDVariant, -1), `5`, "expected Variant ({\"type\": <built-in type name>, \"value\": …}), given 5", ErrValue},
		{vt(ua.TypeIDVariant, -1), `{"type":"Byte","value":256}`, ".value: expected Byte", ErrOutOfRange},
		{vt(ua.TypeIDExtensionObject, -1), `{"typeId":"i=886","body":{"Low":1}}`, "whose Go type is known", ErrUnsupported},
		{ValueType{Builtin: ua.TypeIDExtensionObject, ValueRank: -1, Struct: reflect.TypeFor[*ua.Range]()}, `{"typeId":"i=887","body":{"Low":1}}`, `.typeId: expected "i=886" (the encoding of Range)`, ErrValue},
		{ValueType{Builtin: ua.TypeIDExtensionObject, ValueRank: -1, Struct: reflect.TypeFor[*ua.Range]()}, `{"body":{"Low":1,"Middle":2}}`, `.body: expected the fields of Range, given field "Middle"`, ErrValue},
		{ValueType{Builtin: ua.TypeIDExtensionObject, ValueRank: -1, Struct: reflect.TypeFor[*ua.Range]()}, `{"body":{"Low":"x"}}`, `.body.Low: expected Double`, ErrValue},
		{ValueType{Builtin: ua.TypeIDExtensionObject, ValueRank: -1, Struct: reflect.TypeFor[*ua.ServerStatusDataType]()}, `{"body":{"State":"x"}}`, `.body.State: expected UInt32`, ErrValue},
		{vt(ua.TypeIDDiagnosticInfo, -1), `{"symbolicId":"x"}`, ".symbolicId: expected Int32", ErrValue},
		{vt(ua.TypeIDDataValue, -1), `{"value":1,"type":"Int32","status":"Nope"}`, ".status: expected StatusCode", ErrValue},
		{vt(ua.TypeIDDouble, -1), `[1,2]`, "expected a scalar Double, given an array of 2 elements", ErrValue},
		{vt(ua.TypeIDDouble, 1), `5`, "expected an array of Double, given 5", ErrValue},
		{vt(ua.TypeIDDouble, 1), `[[1]]`, "expected an array of Double, given an array of 1 elements", ErrValue},
		{vt(ua.TypeIDDouble, 2), `[1,2]`, "expected a 2-dimensional array (nested JSON arrays) of Double", ErrValue},
		{vt(ua.TypeIDInt32, 2), `[[1,2],[3]]`, "[1]: expected an array of 2 elements (matrices must be rectangular), given an array of 1 elements", ErrValue},
		{vt(ua.TypeIDInt32, 2), `[[1,2],3]`, "[1]: expected an array (every element at one level must have the same shape), given 3", ErrValue},
		{vt(ua.TypeIDByte, 1), `[1,2,300]`, "[2]: expected Byte (integer 0..255), given 300", ErrOutOfRange},
		{vt(ua.TypeIDByte, 1), big, "at most 65535 array elements", ErrOutOfRange},
		{vt(ua.TypeIDDouble, -3), `[[1]]`, "expected a scalar or a one-dimensional array of Double", ErrValue},
		{vt(ua.TypeIDDouble, 0), `1`, "expected an array of Double", ErrValue},
		{vt(ua.TypeIDDouble, -4), `1`, "expected a supported ValueRank, given ValueRank -4", ErrUnsupported},
		{vt(0, -1), `1`, "expected a writable type", ErrUnsupported},
		{vt(ua.TypeIDDouble, -1), `{`, "malformed JSON", ErrCommand},
		{vt(ua.TypeIDDouble, -1), `1 2`, "data after the value", ErrCommand},
		{vt(ua.TypeIDDouble, -1), ``, "malformed JSON", ErrCommand},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String()+"/"+tt.json[:min(len(tt.json), 30)], func(t *testing.T) {
			v, err := DecodeValue([]byte(tt.json), tt.typ)
			if err == nil {
				t.Fatalf("accepted: %v", v.Value())
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q\nwant %v containing %q", err, tt.is, tt.msg)
			}
		})
	}
}

func TestDecodeValueAccepts(t *testing.T) {
	tests := []struct {
		typ  ValueType
		json string
		want any
	}{
		{vt(ua.TypeIDInt64, -1), `"9223372036854775807"`, int64(9223372036854775807)},
		{vt(ua.TypeIDInt64, -1), `-9007199254740991`, int64(-9007199254740991)},
		{vt(ua.TypeIDUint64, -1), `9007199254740991`, uint64(9007199254740991)},
		{vt(ua.TypeIDUint32, -1), `-0`, uint32(0)},
		{vt(ua.TypeIDDouble, -1), `1e3`, 1000.0},
		{vt(ua.TypeIDFloat, -1), `1.5`, float32(1.5)},
		{vt(ua.TypeIDString, -1), `null`, ""},
		{vt(ua.TypeIDStatusCode, -1), `"BadOutOfRange"`, ua.StatusBadOutOfRange},
		{vt(ua.TypeIDStatusCode, -1), `2147483648`, ua.StatusBad},
		{vt(ua.TypeIDLocalizedText, -1), `"plain"`, ua.NewLocalizedText("plain")},
		{vt(ua.TypeIDDouble, -2), `[[1],[2]]`, [][]float64{{1}, {2}}},
		{vt(ua.TypeIDDouble, -2), `7`, 7.0},
		{vt(ua.TypeIDDouble, -3), `[7]`, []float64{7}},
		{vt(ua.TypeIDDouble, 0), `[[7]]`, [][]float64{{7}}},
		{vt(ua.TypeIDInt32, 1), `[]`, []int32{}},
		{vt(ua.TypeIDDateTime, -1), `"2025-01-02T04:04:05+01:00"`, testTime.Truncate(1e9)},
		{vt(ua.TypeIDVariant, -1), `{"type":"Null","value":null}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String()+"/"+tt.json, func(t *testing.T) {
			v, err := DecodeValue([]byte(tt.json), tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.Value(), tt.want) {
				t.Fatalf("got %#v, want %#v", v.Value(), tt.want)
			}
		})
	}
}

func TestDecodeStructFields(t *testing.T) {
	typ := ValueType{Builtin: ua.TypeIDExtensionObject, ValueRank: RankScalar, Struct: reflect.TypeFor[*ua.EUInformation]()}
	v, err := DecodeValue([]byte(`{"body":{"NamespaceURI":"http://www.opcfoundation.org/UA/units/un/cefact","UnitID":4408652,"DisplayName":{"locale":"en","text":"°C"}}}`), typ)
	if err != nil {
		t.Fatal(err)
	}
	eu := v.ExtensionObject().Value.(*ua.EUInformation)
	if eu.UnitID != 4408652 || eu.DisplayName.Text != "°C" || eu.Description != nil {
		t.Fatalf("%+v", eu)
	}
	// Arrays in bodies, and the DataType's own type id.
	typ.Struct = reflect.TypeFor[*ua.Argument]()
	v, err = DecodeValue([]byte(`{"typeId":"i=298","body":{"Name":"speed","DataType":"i=11","ValueRank":1,"ArrayDimensions":[3]}}`), typ)
	if err != nil {
		t.Fatal(err)
	}
	arg := v.ExtensionObject().Value.(*ua.Argument)
	if arg.DataType.String() != "i=11" || arg.ArrayDimensions[0] != 3 {
		t.Fatalf("%+v", arg)
	}
}

func TestDecodeWrite(t *testing.T) {
	dbl := vt(ua.TypeIDDouble, RankScalar)
	id, v, err := DecodeWrite([]byte(`{"id":"c-17","value":42.5}`), dbl)
	if err != nil || id != "c-17" || v.Float() != 42.5 {
		t.Fatalf("%q %v %v", id, v, err)
	}
	id, v, err = DecodeWrite([]byte(`{"value":1}`), dbl)
	if err != nil || id != "" || v.Float() != 1 {
		t.Fatal(id, v, err)
	}
	bad := []struct {
		in, id, msg string
		is          error
	}{
		{`{"id":"a","value":"x"}`, "a", "value: expected Double", ErrValue},
		{`{"id":"a"}`, "a", `a write needs "value"`, ErrCommand},
		{`{"id":"a","value":1,"force":true}`, "a", `unknown member "force"`, ErrCommand},
		{`{"id":5,"value":1}`, "", `"id" must be a string, given 5`, ErrCommand},
		{`{"id":"` + strings.Repeat("x", 300) + `","value":1}`, "", `"id" longer than 256 bytes`, ErrCommand},
		{`42`, "", `a command is a JSON object such as {"id": "c1", "value": …}, given 42`, ErrCommand},
		{`not json`, "", "malformed JSON", ErrCommand},
		{`{"id":"a","value":1}` + strings.Repeat(" ", MaxCommandSize), "", "command larger than", ErrCommand},
	}
	for _, b := range bad {
		id, _, err := DecodeWrite([]byte(b.in), dbl)
		if id != b.id || !errors.Is(err, b.is) || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("DecodeWrite(%.40s) = %q, %v; want id %q and %v containing %q", b.in, id, err, b.id, b.is, b.msg)
		}
	}
}

func TestDecodeCall(t *testing.T) {
	args := []ValueType{vt(ua.TypeIDDouble, -1), vt(ua.TypeIDString, -1), vt(ua.TypeIDInt32, 1)}
	id, vals, err := DecodeCall([]byte(`{"id":"m1","args":[1500,"ramp",[1,2]]}`), args)
	if err != nil || id != "m1" || len(vals) != 3 || vals[0].Float() != 1500 || vals[1].String() != "ramp" || !reflect.DeepEqual(vals[2].Value(), []int32{1, 2}) {
		t.Fatalf("%q %v %v", id, vals, err)
	}
	if _, vals, err := DecodeCall([]byte(`{"id":"m2"}`), nil); err != nil || len(vals) != 0 {
		t.Fatalf("no-argument call: %v %v", vals, err)
	}
	bad := []struct{ in, msg string }{
		{`{"id":"m","args":[1]}`, "args: expected 3 arguments, given 1"},
		{`{"id":"m","args":5}`, "args: expected an array of arguments, given 5"},
		{`{"id":"m"}`, `a call needs "args"`},
		{`{"id":"m","args":[1,"a",[1,"x"]]}`, "args[2][1]: expected Int32"},
		{`{"id":"m","value":1}`, `unknown member "value"`},
	}
	for _, b := range bad {
		id, _, err := DecodeCall([]byte(b.in), args)
		if err == nil || id != "m" || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("DecodeCall(%s) = %q, %v; want error containing %q", b.in, id, err, b.msg)
		}
	}
}

func TestAppendReply(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{ID: "c-17"}, `{"id":"c-17","ok":true,"status":{"code":0,"name":"Good"},"error":null}`},
		{Reply{ID: "c-18", Status: ua.StatusBadNotWritable}, `{"id":"c-18","ok":false,"status":{"code":2151350272,"name":"BadNotWritable"},"error":"BadNotWritable"}`},
		{Reply{ID: "c-19", Status: ua.StatusBadOutOfRange, Err: &CoercionError{Path: "value", Expected: "Byte (integer 0..255)", Given: "300", Err: ErrOutOfRange}},
			`{"id":"c-19","ok":false,"status":{"code":2151415808,"name":"BadOutOfRange"},"error":"value: expected Byte (integer 0..255), given 300"}`},
		{Reply{ID: "m1", Outputs: []*ua.Variant{ua.MustVariant(1.5), ua.MustVariant(int64(2))}},
			`{"id":"m1","ok":true,"status":{"code":0,"name":"Good"},"error":null,"outputs":[{"type":"Double","value":1.5},{"type":"Int64","value":"2"}]}`},
		{Reply{ID: "m2", Outputs: []*ua.Variant{}}, `{"id":"m2","ok":true,"status":{"code":0,"name":"Good"},"error":null,"outputs":[]}`},
	}
	for _, tt := range tests {
		if got := string(AppendReply(nil, tt.r)); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestCommandStatus(t *testing.T) {
	tests := []struct {
		err  error
		want ua.StatusCode
	}{
		{nil, ua.StatusOK},
		{&CoercionError{Err: ErrOutOfRange}, ua.StatusBadOutOfRange},
		{&CoercionError{Err: ErrValue}, ua.StatusBadTypeMismatch},
		{&CoercionError{Err: ErrUnsupported}, ua.StatusBadNotSupported},
		{commandErr("x"), ua.StatusBadDecodingError},
		{withStatus(errors.New("x"), ua.StatusBadUserAccessDenied), ua.StatusBadUserAccessDenied},
		{errors.New("other"), ua.StatusBadInternalError},
	}
	for _, tt := range tests {
		if got := CommandStatus(tt.err); got != tt.want {
			t.Errorf("CommandStatus(%v) = %v, want %v", tt.err, StatusName(got), StatusName(tt.want))
		}
	}
}

func TestTypeForNode(t *testing.T) {
	rangeVal := ua.MustVariant(ua.NewExtensionObject(&ua.Range{Low: 0, High: 1}))
	tests := []struct {
		dataType string
		rank     int32
		current  *ua.Variant
		want     string
		errMsg   string
	}{
		{"i=11", -1, nil, "Double", ""},
		{"i=3", 1, nil, "Byte[]", ""},
		{"i=7", 2, nil, "UInt32[][]", ""},
		{"i=290", -1, nil, "Double", ""},                     // Duration
		{"i=294", -1, nil, "DateTime", ""},                   // UtcTime
		{"i=295", -1, nil, "String", ""},                     // LocaleId
		{"i=29", -1, nil, "Int32", ""},                       // Enumeration
		{"i=24", -2, nil, "Variant(rank -2)", ""},            // BaseDataType
		{"i=852", -1, ua.MustVariant(int32(0)), "Int32", ""}, // ServerState (an enumeration): from the value
		{"ns=2;i=3001", -1, ua.MustVariant(uint16(7)), "UInt16", ""},
		{"i=26", -1, ua.MustVariant(float32(1)), "Float", ""}, // Number: from the value
		{"ns=2;i=3001", -1, nil, "", "the node has no value to take the type from"},
		{"ns=2;i=3001", -1, &ua.Variant{}, "", "the node has no value"},
		{"i=884", -1, rangeVal, "ExtensionObject", ""},
		{"i=11", -5, nil, "", "unsupported ValueRank"},
	}
	for _, tt := range tests {
		dt := ua.MustParseNodeID(tt.dataType)
		got, err := TypeForNode(dt, tt.rank, tt.current)
		if tt.errMsg != "" {
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.errMsg) {
				t.Errorf("TypeForNode(%s) = %v, %v; want error %q", tt.dataType, got, err, tt.errMsg)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("TypeForNode(%s, %d) = %v, %v; want %s", tt.dataType, tt.rank, got, err, tt.want)
		}
	}
	got, _ := TypeForNode(ua.MustParseNodeID("i=884"), -1, rangeVal)
	if got.Struct != reflect.TypeFor[*ua.Range]() {
		t.Fatalf("Struct = %v", got.Struct)
	}
}

func TestParseValueType(t *testing.T) {
	for in, want := range map[string]ValueType{
		"Double":        vt(ua.TypeIDDouble, -1),
		"Int32[]":       vt(ua.TypeIDInt32, 1),
		"Byte[][]":      vt(ua.TypeIDByte, 2),
		"Variant":       vt(ua.TypeIDVariant, -1),
		"LocalizedText": vt(ua.TypeIDLocalizedText, -1),
	} {
		got, err := ParseValueType(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseValueType(%q) = %v (%s), %v", in, got, got.String(), err)
		}
	}
	for in, msg := range map[string]string{
		"double":                          `unknown type "double"; want one of "Boolean"`,
		"Null":                            `unknown type "Null"`,
		"Int32[":                          `unknown type "Int32["`,
		"Int32" + strings.Repeat("[]", 9): "more than 8 array dimensions",
		"ExtensionObject":                 "ExtensionObject arguments are not supported",
	} {
		_, err := ParseValueType(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseValueType(%q) = %v, want %q", in, err, msg)
		}
	}
	var v ValueType
	if err := v.UnmarshalText([]byte("UInt64[]")); err != nil || v.String() != "UInt64[]" {
		t.Fatal(v, err)
	}
	if TypeName(99) != "TypeID(99)" {
		t.Fatal(TypeName(99))
	}
}

// FuzzCommandValue feeds arbitrary JSON from the bus to the command codec
// for every built-in type and ValueRank. Whatever the input: no panic, and
// an accepted value is one gopcua can encode, which the payload codec
// writes and the command codec reads back to the same bytes.
func FuzzCommandValue(f *testing.F) {
	// Seeds: one valid value per common type, and classic traps.
	f.Add([]byte(`42.5`), uint8(ua.TypeIDDouble), int8(-1)) // plain Double
	f.Add([]byte(`300`), uint8(ua.TypeIDByte), int8(-1))    // out of range
	f.Add([]byte(`"9223372036854775807"`), uint8(ua.TypeIDInt64), int8(-1))
	f.Add([]byte(`[[1,2],[3,4]]`), uint8(ua.TypeIDInt32), int8(2)) // matrix
	f.Add([]byte(`[[1,2],[3]]`), uint8(ua.TypeIDInt32), int8(2))   // ragged
	f.Add([]byte(`["NaN","Infinity",-0]`), uint8(ua.TypeIDFloat), int8(1))
	f.Add([]byte(`"2025-01-02T03:04:05.1234567Z"`), uint8(ua.TypeIDDateTime), int8(-1))
	f.Add([]byte(`"AAH/"`), uint8(ua.TypeIDByteString), int8(-1))
	f.Add([]byte(`{"type":"Variant","value":{"type":"Int64","value":"1"}}`), uint8(ua.TypeIDVariant), int8(-2))
	f.Add([]byte(`{"value":{"type":"Null"},"type":"Null"}`), uint8(ua.TypeIDDataValue), int8(-1))
	f.Add([]byte(`{"innerDiagnosticInfo":{"innerDiagnosticInfo":{}}}`), uint8(ua.TypeIDDiagnosticInfo), int8(-1))
	f.Add([]byte(`"svr=1;nsu=urn:a%3Bb;s=x"`), uint8(ua.TypeIDExpandedNodeID), int8(-1))
	f.Add([]byte(`{"ns":65535,"name":""}`), uint8(ua.TypeIDQualifiedName), int8(0))
	f.Add([]byte(`[[[[[[[[[[1]]]]]]]]]]`), uint8(ua.TypeIDByte), int8(-2)) // too deep
	f.Add([]byte("\"\xff\""), uint8(ua.TypeIDString), int8(-1))            // invalid UTF-8
	f.Fuzz(func(t *testing.T, data []byte, typeID uint8, rank int8) {
		typ := ValueType{Builtin: ua.TypeID(typeID % 27), ValueRank: int32(rank % 10)}
		v, err := DecodeValue(data, typ)
		if err != nil {
			if !errors.Is(err, ErrValue) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrCommand) && !errors.Is(err, ErrSyntax) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		first, err := v.Encode()
		if err != nil {
			t.Fatalf("accepted %q as %v but gopcua cannot encode it: %v", data, typ, err)
		}
		var wired ua.Variant
		if _, err := wired.Decode(first); err != nil {
			t.Fatalf("accepted %q as %v but the encoding does not decode: %v", data, typ, err)
		}
		text := AppendValue(nil, &wired)
		backType := typ
		if typ.Builtin == ua.TypeIDVariant && !(wired.Type() == ua.TypeIDVariant && wired.Has(ua.VariantArrayValues)) {
			// A scalar for a Variant node is the inner value; the node
			// reports it with its own type, so send it back as such.
			text = []byte(`{"type":"` + TypeName(wired.Type()) + `","value":` + string(text) + `}`)
		}
		back, err := DecodeValue(text, backType)
		if err != nil {
			t.Fatalf("%q as %v: payload %s does not decode: %v", data, typ, text, err)
		}
		// Compare with what gopcua delivers: its decoder turns an empty
		// ByteString into a null one, which the payload then writes as null.
		delivered, _ := wired.Encode()
		second, _ := back.Encode()
		if !bytes.Equal(delivered, second) {
			t.Fatalf("%q as %v: round trip through %s changed the value:\n%x\n%x", data, typ, text, delivered, second)
		}
	})
}
