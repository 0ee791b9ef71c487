package mapping

import (
	"reflect"
	"strings"

	"github.com/gopcua/opcua/ua"
)

// ValueRank values with a special meaning (Part 3, 5.6.2).
const (
	RankScalarOrOneDimension int32 = -3
	RankAny                  int32 = -2
	RankScalar               int32 = -1
	RankOneOrMoreDimensions  int32 = 0
	RankOneDimension         int32 = 1
)

// maxRank caps array nesting in commands and type names.
const maxRank = 8

// builtinNames lists the built-in type names of Part 6, 5.1.2 (Table 1) in
// ua.TypeID order, starting at TypeIDNull (0). They appear in payloads
// ("type") and in type names.
const builtinNames = "Null Boolean SByte Byte Int16 UInt16 Int32 UInt32 Int64 UInt64 Float Double String DateTime Guid ByteString XmlElement NodeId ExpandedNodeId StatusCode QualifiedName LocalizedText ExtensionObject DataValue Variant DiagnosticInfo"

// TypeName returns the built-in type name of id ("Double", "Int64"), or
// "TypeID(n)" for ids outside Part 6, Table 1.
func TypeName(id ua.TypeID) string {
	switch id {
	case ua.TypeIDNull:
		return "Null"
	case ua.TypeIDBoolean:
		return "Boolean"
	case ua.TypeIDSByte:
		return "SByte"
	case ua.TypeIDByte:
		return "Byte"
	case ua.TypeIDInt16:
		return "Int16"
	case ua.TypeIDUint16:
		return "UInt16"
	case ua.TypeIDInt32:
		return "Int32"
	case ua.TypeIDUint32:
		return "UInt32"
	case ua.TypeIDInt64:
		return "Int64"
	case ua.TypeIDUint64:
		return "UInt64"
	case ua.TypeIDFloat:
		return "Float"
	case ua.TypeIDDouble:
		return "Double"
	case ua.TypeIDString:
		return "String"
	case ua.TypeIDDateTime:
		return "DateTime"
	case ua.TypeIDGUID:
		return "Guid"
	case ua.TypeIDByteString:
		return "ByteString"
	case ua.TypeIDXMLElement:
		return "XmlElement"
	case ua.TypeIDNodeID:
		return "NodeId"
	case ua.TypeIDExpandedNodeID:
		return "ExpandedNodeId"
	case ua.TypeIDStatusCode:
		return "StatusCode"
	case ua.TypeIDQualifiedName:
		return "QualifiedName"
	case ua.TypeIDLocalizedText:
		return "LocalizedText"
	case ua.TypeIDExtensionObject:
		return "ExtensionObject"
	case ua.TypeIDDataValue:
		return "DataValue"
	case ua.TypeIDVariant:
		return "Variant"
	case ua.TypeIDDiagnosticInfo:
		return "DiagnosticInfo"
	}
	return "TypeID(" + itoa(int64(id)) + ")"
}

// TypeByName returns the built-in type named name (as returned by
// TypeName; "Null" is not a type a value can be coerced to).
func TypeByName(name string) (ua.TypeID, bool) {
	if name == "" || name == "Null" {
		return 0, false
	}
	for id, n := range strings.Fields(builtinNames) {
		if n == name {
			return ua.TypeID(id), true
		}
	}
	return 0, false
}

// ValueType is what a command value is coerced to: the built-in type that
// encodes the node's DataType, and the node's ValueRank.
type ValueType struct {
	// Builtin is the built-in type of a scalar or of the array elements.
	// TypeIDVariant means "any type": the JSON must say which, as
	// {"type": "Double", "value": 1.5}.
	Builtin ua.TypeID
	// ValueRank is the node's ValueRank: RankScalar, RankOneDimension, n > 1
	// for n dimensions, or one of the flexible ranks.
	ValueRank int32
	// Struct is the Go type of an ExtensionObject body (a pointer to a
	// struct that gopcua registered), needed to write structured values;
	// TypeForNode takes it from the node's current value.
	Struct reflect.Type
}

// ParseValueType parses a method argument type: a built-in type name,
// followed by one "[]" per array dimension ("Double", "Int32[]",
// "Byte[][]"), or "Variant" for any type.
func ParseValueType(s string) (ValueType, error) {
	name := s
	rank := RankScalar
	for strings.HasSuffix(name, "[]") {
		name = name[:len(name)-2]
		if rank == RankScalar {
			rank = 0
		}
		rank++
	}
	id, ok := TypeByName(name)
	switch {
	case !ok:
		return ValueType{}, valueErr(ErrSyntax, s, "unknown type "+quote(name)+"; want one of "+joinQuoted(strings.Fields(builtinNames)[1:]))
	case rank > maxRank:
		return ValueType{}, valueErr(ErrSyntax, s, "more than "+itoa(maxRank)+" array dimensions")
	case id == ua.TypeIDExtensionObject || id == ua.TypeIDDiagnosticInfo:
		return ValueType{}, valueErr(ErrUnsupported, s, TypeName(id)+" arguments are not supported")
	}
	return ValueType{Builtin: id, ValueRank: rank}, nil
}

// String returns the type in ParseValueType's syntax; flexible ranks are
// written as "Double(rank -2)".
func (t ValueType) String() string {
	s := TypeName(t.Builtin)
	switch {
	case t.ValueRank == RankScalar:
		return s
	case t.ValueRank >= 1:
		return s + strings.Repeat("[]", int(t.ValueRank))
	}
	return s + "(rank " + itoa(int64(t.ValueRank)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (t ValueType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseValueType.
func (t *ValueType) UnmarshalText(b []byte) error {
	v, err := ParseValueType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// knownSubtype maps well-known DataTypes of namespace 0 that are subtypes of
// built-in types (Part 3, 8 and Part 5, 12) to the built-in type that
// encodes them.
func knownSubtype(id uint32) (ua.TypeID, bool) {
	switch id {
	case 29: // Enumeration (and enumerated types)
		return ua.TypeIDInt32, true
	case 30, 311, 2000, 2001, 2002, 2003, 16307: // Image, ApplicationInstanceCertificate, ImageBMP, ImageGIF, ImageJPG, ImagePNG, AudioDataType
		return ua.TypeIDByteString, true
	case 288, 289, 17588, 20998, 31917: // IntegerId, Counter, Index, VersionTime, Handle
		return ua.TypeIDUint32, true
	case 290: // Duration
		return ua.TypeIDDouble, true
	case 291, 292, 295, 12877, 12878, 12879, 12880, 12881, 24263, 31918: // NumericRange, Time, LocaleId, NormalizedString, DecimalString, DurationString, TimeString, DateString, SemanticVersionString, TrimmedString
		return ua.TypeIDString, true
	case 293, 294: // Date, UtcTime
		return ua.TypeIDDateTime, true
	case 11737: // BitFieldMaskDataType
		return ua.TypeIDUint64, true
	}
	return 0, false
}

// TypeForNode derives a node's ValueType from its DataType and ValueRank
// attributes, both read at session start, and its current value (may be nil).
//
// Built-in DataTypes (ns=0;i=1..25) and the well-known subtypes of namespace
// 0 map directly; BaseDataType (i=24) means any type. For abstract types
// (Number, Integer, UInteger), structures, enumerations and types of other
// namespaces, the built-in type of the current value is used; if the node
// has no value yet, TypeForNode fails with ErrUnsupported rather than guess.
// For structure (ExtensionObject) values, Struct is taken from the current
// value's body.
func TypeForNode(dataType *ua.NodeID, valueRank int32, current *ua.Variant) (ValueType, error) {
	t := ValueType{ValueRank: valueRank}
	if valueRank < RankScalarOrOneDimension || valueRank > maxRank {
		return t, valueErr(ErrUnsupported, itoa(int64(valueRank)), "unsupported ValueRank")
	}
	known := false
	if dataType != nil && dataType.Namespace() == 0 && dataType.Type() != ua.NodeIDTypeString &&
		dataType.Type() != ua.NodeIDTypeGUID && dataType.Type() != ua.NodeIDTypeByteString {
		n := dataType.IntID()
		switch {
		case n >= 1 && n <= 25 && n != uint32(ua.TypeIDExtensionObject):
			t.Builtin, known = ua.TypeID(n), true
		default:
			t.Builtin, known = knownSubtype(n)
		}
	}
	if current != nil && current.Type() == ua.TypeIDExtensionObject {
		t.Struct = structType(current)
	}
	if known {
		return t, nil
	}
	if current == nil || current.Type() == ua.TypeIDNull {
		return t, valueErr(ErrUnsupported, dataType.String(), "DataType is not a built-in type and the node has no value to take the type from")
	}
	t.Builtin = current.Type()
	if t.Builtin == ua.TypeIDExtensionObject && t.Struct == nil {
		return t, valueErr(ErrUnsupported, dataType.String(), "structure type unknown to gopcua: its values cannot be written")
	}
	return t, nil
}

// structType returns the Go type of the first ExtensionObject body in v.
func structType(v *ua.Variant) reflect.Type {
	switch x := v.Value().(type) {
	case *ua.ExtensionObject:
		if x != nil && x.Value != nil {
			return reflect.TypeOf(x.Value)
		}
	case []*ua.ExtensionObject:
		for _, e := range x {
			if e != nil && e.Value != nil {
				return reflect.TypeOf(e.Value)
			}
		}
	}
	return nil
}
