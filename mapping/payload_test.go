package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// wire sends v through gopcua's binary codec, so tests see values exactly as
// a session delivers them (e.g. ua.ByteArray for arrays of Byte, nested
// slices for matrices, decoded ExtensionObject bodies).
func wire(t testing.TB, v *ua.Variant) *ua.Variant {
	t.Helper()
	b, err := v.Encode()
	if err != nil {
		t.Fatalf("encode %v: %v", v.Type(), err)
	}
	out := new(ua.Variant)
	if _, err := out.Decode(b); err != nil {
		t.Fatalf("decode %v: %v", v.Type(), err)
	}
	return out
}

func mustVariant(t testing.TB, x any) *ua.Variant {
	t.Helper()
	if v, ok := x.(*ua.Variant); ok {
		return v
	}
	v, err := ua.NewVariant(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	testTime = time.Date(2025, 1, 2, 3, 4, 5, 123456700, time.UTC)
	testGUID = ua.NewGUID("72962B91-FA75-4AE6-8D28-B404DC7DAF63")
)

// byteStrings is an array of ByteString of different lengths, as gopcua
// decodes one ([][]byte), including a null element.
func byteStrings() *ua.Variant {
	b := ua.NewBuffer(nil)
	b.WriteByte(byte(ua.TypeIDByteString) | ua.VariantArrayValues)
	b.WriteInt32(3)
	b.WriteByteString([]byte{1})
	b.WriteByteString([]byte{2, 3})
	b.WriteByteString(nil)
	v := new(ua.Variant)
	if _, err := v.Decode(b.Bytes()); err != nil {
		panic(err)
	}
	return v
}

func expandedWithURI() *ua.ExpandedNodeID {
	return ua.NewExpandedNodeID(ua.NewStringNodeID(0, "Motor;1"), "urn:x;y%z", 1)
}

func diagnostic() *ua.DiagnosticInfo {
	return &ua.DiagnosticInfo{
		EncodingMask: ua.DiagnosticInfoSymbolicID | ua.DiagnosticInfoAdditionalInfo | ua.DiagnosticInfoInnerStatusCode | ua.DiagnosticInfoInnerDiagnosticInfo,
		SymbolicID:   3, AdditionalInfo: "detail", InnerStatusCode: ua.StatusBadTimeout,
		InnerDiagnosticInfo: &ua.DiagnosticInfo{EncodingMask: ua.DiagnosticInfoLocale, Locale: -1},
	}
}

func nestedDataValue() *ua.DataValue {
	dv := &ua.DataValue{Value: ua.MustVariant(int32(5)), Status: ua.StatusUncertain, SourceTimestamp: testTime}
	dv.UpdateMask()
	return dv
}

// valueCases are the documented JSON shapes of every built-in type, as
// scalars and arrays: the payload writes "json" for the value and the
// command codec reads it back to the same Variant.
func valueCases() []struct {
	name string
	v    any
	json string
} {
	return []struct {
		name string
		v    any
		json string
	}{
		{"Boolean", true, `true`},
		{"Boolean[]", []bool{true, false}, `[true,false]`},
		{"SByte", int8(-128), `-128`},
		{"SByte[]", []int8{-1, 127}, `[-1,127]`},
		{"Byte", uint8(255), `255`},
		{"Byte[]", ua.ByteArray{0, 1, 255}, `[0,1,255]`},
		{"Int16", int16(-32768), `-32768`},
		{"UInt16", uint16(65535), `65535`},
		{"UInt16[]", []uint16{1, 65535}, `[1,65535]`},
		{"Int32", int32(-2147483648), `-2147483648`},
		{"Int32[]", []int32{1, -2, 3}, `[1,-2,3]`},
		{"Int32[][]", [][]int32{{1, 2, 3}, {4, 5, 6}}, `[[1,2,3],[4,5,6]]`},
		{"Int32[][][]", [][][]int32{{{1}, {2}}, {{3}, {4}}}, `[[[1],[2]],[[3],[4]]]`},
		{"UInt32", uint32(4294967295), `4294967295`},
		{"Int64", int64(math.MinInt64), `"-9223372036854775808"`},
		{"Int64[]", []int64{1, math.MaxInt64}, `["1","9223372036854775807"]`},
		{"UInt64", uint64(math.MaxUint64), `"18446744073709551615"`},
		{"Float", float32(3.4028235e38), `3.4028235e+38`},
		{"Float small", float32(1.5e-7), `1.5e-7`},
		{"Float[]", []float32{0.1, float32(math.Inf(1)), float32(math.NaN())}, `[0.1,"Infinity","NaN"]`},
		{"Double", 0.1, `0.1`},
		{"Double big", 1e300, `1e+300`},
		{"Double negative zero", math.Copysign(0, -1), `-0`},
		{"Double[]", []float64{-1.5, math.Inf(-1), 2}, `[-1.5,"-Infinity",2]`},
		{"Double[][]", [][]float64{{1.5}, {2.5}}, `[[1.5],[2.5]]`},
		{"String", "héllo \"q\"\n\t\\ \u2028 \x01", `"héllo \"q\"\n\t\\ \u2028 \u0001"`},
		{"String empty", "", `""`},
		{"String[]", []string{"a", "b"}, `["a","b"]`},
		{"DateTime", testTime, `"2025-01-02T03:04:05.1234567Z"`},
		{"DateTime zero", time.Time{}, `null`},
		{"DateTime[]", []time.Time{testTime, time.Date(1970, 1, 1, 0, 0, 0, 100, time.UTC)}, `["2025-01-02T03:04:05.1234567Z","1970-01-01T00:00:00.0000001Z"]`},
		{"Guid", testGUID, `"72962B91-FA75-4AE6-8D28-B404DC7DAF63"`},
		{"Guid[]", []*ua.GUID{testGUID}, `["72962B91-FA75-4AE6-8D28-B404DC7DAF63"]`},
		{"ByteString", []byte{0, 1, 255}, `"AAH/"`},
		{"ByteString empty", []byte{}, `null`}, // gopcua decodes empty as nil
		{"ByteString[]", byteStrings(), `["AQ==","AgM=",null]`},
		{"XmlElement", ua.XMLElement("<a>b</a>"), `"<a>b</a>"`},
		{"NodeId string", ua.NewStringNodeID(2, "Motor1"), `"ns=2;s=Motor1"`},
		// NodeIds come back in their smallest binary encoding (the form
		// gopcua's parser and most servers use), so the cases use it too.
		{"NodeId numeric", ua.NewTwoByteNodeID(85), `"i=85"`},
		{"NodeId numeric large", ua.NewNumericNodeID(300, 70000), `"ns=300;i=70000"`},
		{"NodeId guid", ua.NewGUIDNodeID(1, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"), `"ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63"`},
		{"NodeId opaque", ua.NewByteStringNodeID(3, []byte{1, 2, 3}), `"ns=3;b=AQID"`},
		{"NodeId[]", []*ua.NodeID{ua.NewFourByteNodeID(2, 7)}, `["ns=2;i=7"]`},
		{"ExpandedNodeId", expandedWithURI(), `"svr=1;nsu=urn:x%3By%25z;s=Motor;1"`},
		{"ExpandedNodeId index", ua.NewExpandedNodeID(ua.NewFourByteNodeID(3, 9), "", 0), `"ns=3;i=9"`},
		{"StatusCode", ua.StatusBadTimeout, `{"code":2148139008,"name":"BadTimeout"}`},
		{"StatusCode[]", []ua.StatusCode{ua.StatusOK, ua.StatusBad}, `[{"code":0,"name":"Good"},{"code":2147483648,"name":"Bad"}]`},
		{"QualifiedName", &ua.QualifiedName{NamespaceIndex: 2, Name: "Motor1"}, `{"ns":2,"name":"Motor1"}`},
		{"LocalizedText", ua.NewLocalizedTextWithLocale("Hello", "en"), `{"locale":"en","text":"Hello"}`},
		{"LocalizedText text only", ua.NewLocalizedText("Hi"), `{"locale":"","text":"Hi"}`},
		{"LocalizedText[]", []*ua.LocalizedText{ua.NewLocalizedText("a")}, `[{"locale":"","text":"a"}]`},
		{"ExtensionObject", ua.NewExtensionObject(&ua.Range{Low: -1.5, High: 100}), `{"typeId":"i=886","body":{"Low":-1.5,"High":100}}`},
		{"ExtensionObject nested", ua.NewExtensionObject(&ua.ServerStatusDataType{
			StartTime: testTime, State: ua.ServerStateSuspended,
			BuildInfo:           &ua.BuildInfo{ProductName: "rcsim", BuildDate: testTime},
			SecondsTillShutdown: 7, ShutdownReason: ua.NewLocalizedText("bye"),
		}), `{"typeId":"i=864","body":{"StartTime":"2025-01-02T03:04:05.1234567Z","CurrentTime":null,"State":3,"BuildInfo":{"ProductURI":"","ManufacturerName":"","ProductName":"rcsim","SoftwareVersion":"","BuildNumber":"","BuildDate":"2025-01-02T03:04:05.1234567Z"},"SecondsTillShutdown":7,"ShutdownReason":{"locale":"","text":"bye"}}}`},
		{"ExtensionObject[]", []*ua.ExtensionObject{ua.NewExtensionObject(&ua.Range{Low: 1, High: 2})}, `[{"typeId":"i=886","body":{"Low":1,"High":2}}]`},
		{"DataValue", nestedDataValue(), `{"value":5,"type":"Int32","status":{"code":1073741824,"name":"Uncertain"},"sourceTimestamp":"2025-01-02T03:04:05.1234567Z","serverTimestamp":null}`},
		{"Variant[]", []*ua.Variant{ua.MustVariant(int64(5)), ua.MustVariant("x"), ua.MustVariant([]float64{1, 2})}, `[{"type":"Int64","value":"5"},{"type":"String","value":"x"},{"type":"Double","value":[1,2]}]`},
		{"DiagnosticInfo", diagnostic(), `{"symbolicId":3,"additionalInfo":"detail","innerStatusCode":{"code":2148139008,"name":"BadTimeout"},"innerDiagnosticInfo":{"locale":-1}}`},
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, tc := range valueCases() {
		t.Run(tc.name, func(t *testing.T) {
			orig := mustVariant(t, tc.v)
			if tc.name != "ByteString[]" { // gopcua cannot encode these, see below
				orig = wire(t, orig)
			}
			// The whole document, as published, must be valid JSON whose
			// "value" is the documented shape and whose "type" names the type.
			dv := &ua.DataValue{Value: orig, Status: ua.StatusOK, SourceTimestamp: testTime}
			dv.UpdateMask()
			doc := AppendDataValue(nil, "urn:s", "ns=2;i=1", "n", dv)
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(doc, &fields); err != nil {
				t.Fatalf("document is not valid JSON: %v\n%s", err, doc)
			}
			got := string(fields["value"])
			if got != tc.json {
				t.Fatalf("value = %s\n   want %s", got, tc.json)
			}
			if string(fields["type"]) != `"`+TypeName(orig.Type())+`"` {
				t.Fatalf("type = %s", fields["type"])
			}
			if string(AppendValue(nil, orig)) != got {
				t.Fatal("AppendValue differs from the document's value")
			}
			// Decode with the type and rank the node would report.
			rank := RankScalar
			if dims := orig.ArrayDimensions(); len(dims) > 0 {
				rank = int32(len(dims))
			} else if orig.Has(ua.VariantArrayValues) {
				rank = RankOneDimension
			}
			vt := ValueType{Builtin: orig.Type(), ValueRank: rank}
			if orig.Type() == ua.TypeIDExtensionObject {
				vt.Struct = structType(orig)
			}
			typeID, _ := TypeByName(strings.Trim(string(fields["type"]), `"`))
			vt.Builtin = typeID
			back, err := DecodeValue([]byte(got), vt)
			if tc.name == "ByteString[]" {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("ByteString arrays must be refused for writing, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeValue(%s, %v): %v", got, vt, err)
			}
			want, _ := orig.Encode()
			have, err := back.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want, have) {
				t.Fatalf("round trip changed the value:\n orig %x\n back %x\n json %s", want, have, got)
			}
			// A node of BaseDataType takes the same value as {"type","value"}.
			typed := `{"type":"` + TypeName(orig.Type()) + `","value":` + got + `}`
			if orig.Type() != ua.TypeIDExtensionObject {
				anyBack, err := DecodeValue([]byte(typed), ValueType{Builtin: ua.TypeIDVariant, ValueRank: RankAny})
				if err != nil {
					t.Fatalf("as Variant: %v", err)
				}
				if have, _ := anyBack.Encode(); !bytes.Equal(want, have) {
					t.Fatalf("round trip through Variant changed the value: %x vs %x", want, have)
				}
			}
		})
	}
}

func TestNullValues(t *testing.T) {
	if got := string(AppendValue(nil, nil)); got != "null" {
		t.Fatal(got)
	}
	if got := string(AppendValue(nil, &ua.Variant{})); got != "null" {
		t.Fatal(got)
	}
	// A null ByteString stays null.
	v := wire(t, mustVariant(t, []byte(nil)))
	if got := string(AppendValue(nil, v)); got != "null" {
		t.Fatalf("null ByteString = %s", got)
	}
	back, err := DecodeValue([]byte("null"), ValueType{Builtin: ua.TypeIDByteString, ValueRank: RankScalar})
	if err != nil || back.ByteString() != nil {
		t.Fatalf("null ByteString back: %v %v", back, err)
	}
	// An ExtensionObject of a type gopcua does not know: gopcua drops the
	// body, so the payload says so with "body":null.
	unknown := &ua.ExtensionObject{TypeID: ua.NewFourByteExpandedNodeID(2, 5001), EncodingMask: ua.ExtensionObjectBinary}
	if got := string(AppendValue(nil, mustVariant(t, unknown))); got != `{"typeId":"ns=2;i=5001","body":null}` {
		t.Fatal(got)
	}
	xml := ua.XMLElement("<r/>")
	if got := string(AppendValue(nil, mustVariant(t, &ua.ExtensionObject{TypeID: ua.NewFourByteExpandedNodeID(2, 5002), Value: &xml}))); got != `{"typeId":"ns=2;i=5002","xml":"<r/>"}` {
		t.Fatal(got)
	}
}

func TestAppendDataValueDocument(t *testing.T) {
	dv := &ua.DataValue{
		Value:           ua.MustVariant(1450.5),
		Status:          ua.StatusOK,
		SourceTimestamp: testTime,
		ServerTimestamp: testTime.Add(time.Millisecond),
	}
	dv.UpdateMask()
	got := string(AppendDataValue(nil, "urn:plant:line1", "nsu=urn:plant;s=Speed", "Speed", dv))
	want := `{"server":"urn:plant:line1","node":"nsu=urn:plant;s=Speed","name":"Speed","value":1450.5,"type":"Double",` +
		`"status":{"code":0,"name":"Good"},"sourceTimestamp":"2025-01-02T03:04:05.1234567Z","serverTimestamp":"2025-01-02T03:04:05.1244567Z"}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	matrix := &ua.DataValue{Value: wire(t, ua.MustVariant([][]int32{{1, 2, 3}, {4, 5, 6}})), Status: ua.StatusBadSensorFailure}
	got = string(AppendDataValue(nil, "s", "n", "m", matrix))
	want = `{"server":"s","node":"n","name":"m","value":[[1,2,3],[4,5,6]],"type":"Int32","dimensions":[2,3],` +
		`"status":{"code":2156658688,"name":"BadSensorFailure"},"sourceTimestamp":null,"serverTimestamp":null}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = string(AppendDataValue(nil, "s", "n", "m", nil))
	if got != `{"server":"s","node":"n","name":"m","value":null,"type":"Null","status":{"code":0,"name":"Good"},"sourceTimestamp":null,"serverTimestamp":null}` {
		t.Fatal(got)
	}
}

func TestItemPayload(t *testing.T) {
	tab, err := New(Config{Syntax: MQTT, Prefix: "p", Servers: []Server{{URI: "urn:\"q\"", Key: "q"}}, Rows: []Row{
		{Servers: []string{"*"}, Node: mustRefT(t, "nsu=urn:plant;s=Speed")},
		{Servers: []string{"*"}, Node: mustRefT(t, "ns=2;i=9"), Name: "bare", Settings: Settings{Payload: PayloadValue}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	items := tab.For("urn:\"q\"")
	dv := &ua.DataValue{Value: ua.MustVariant(int64(-5))}
	got := string(items[0].AppendPayload(nil, dv))
	want := `{"server":"urn:\"q\"","node":"nsu=urn:plant;s=Speed","name":"Speed","value":"-5","type":"Int64","status":{"code":0,"name":"Good"},"sourceTimestamp":null,"serverTimestamp":null}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(items[1].AppendPayload([]byte("keep:"), dv)); got != `keep:"-5"` {
		t.Fatalf("value payload %s", got)
	}
}

func TestAppendStringInvalidUTF8(t *testing.T) {
	got := string(appendString(nil, "a\xffb\xc3"))
	if got != `"a\uFFFDb\uFFFD"` {
		t.Fatal(got)
	}
	var s string
	if err := json.Unmarshal([]byte(got), &s); err != nil || s != "a\uFFFDb\uFFFD" {
		t.Fatal(s, err)
	}
}

func TestAppendFloatMatchesJSON(t *testing.T) {
	// Finite floats are written like encoding/json writes them.
	for _, f := range []float64{0, 1, -1, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f, 64); string(got) != string(want) {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
		}
		if math.IsInf(float64(float32(f)), 0) {
			continue
		}
		want32, _ := json.Marshal(float32(f))
		if got := appendFloat(nil, float64(float32(f)), 32); string(got) != string(want32) {
			t.Errorf("appendFloat32(%v) = %s, want %s", float32(f), got, want32)
		}
	}
}

func TestPayloadAllocations(t *testing.T) {
	dv := benchDataValue()
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendDataValue(buf[:0], "urn:plant:line1", "nsu=urn:plant;s=Line1.Speed", "Speed", dv)
	})
	if allocs != 0 {
		t.Fatalf("AppendDataValue allocates %v times per message", allocs)
	}
	if !strings.HasPrefix(string(buf), `{"server":"urn:plant:line1"`) {
		t.Fatal(string(buf))
	}
}

func TestAppendTimeMatchesRFC3339Nano(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(tm time.Time) {
		want := `"` + tm.UTC().Format(time.RFC3339Nano) + `"`
		if got := string(appendTime(nil, tm)); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
	for _, tm := range []time.Time{
		time.Unix(0, 0), time.Unix(0, 1), time.Unix(-1, 0), time.Unix(-1, 999999999),
		time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2000, 2, 29, 23, 59, 59, 100, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2024, 6, 1, 12, 0, 0, 0, time.FixedZone("x", 7200)),
	} {
		check(tm)
	}
	for i := 0; i < 100000; i++ {
		check(time.Unix(rng.Int64N(253402300800+11644473600)-11644473600, rng.Int64N(1e9)))
	}
}
