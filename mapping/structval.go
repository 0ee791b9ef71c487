package mapping

import (
	"reflect"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Structured (ExtensionObject) values. Their bodies are gopcua's generated
// structs; the payload codec writes them field by field (appendStruct) and
// the command codec reads them back here, with the same rules per field.

func coerceExtensionObject(x any, t ValueType, path string) (*ua.ExtensionObject, error) {
	const want = "ExtensionObject ({\"typeId\": <NodeId>, \"body\": {…}})"
	if t.Struct == nil || t.Struct.Kind() != reflect.Pointer || t.Struct.Elem().Kind() != reflect.Struct {
		return nil, &CoercionError{Path: path, Expected: "a structure whose Go type is known (taken from the node's current value)", Given: describe(x), Err: ErrUnsupported}
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, mismatch(path, want, x)
	}
	if err := onlyKeys(m, path, "typeId", "body"); err != nil {
		return nil, err
	}
	body := reflect.New(t.Struct.Elem())
	if err := decodeStruct(m["body"], body.Elem(), path+".body"); err != nil {
		return nil, err
	}
	eo := ua.NewExtensionObject(body.Interface())
	if tid, ok := m["typeId"]; ok && tid != nil {
		got, err := coerceExpandedNodeID(tid, path+".typeId")
		if err != nil {
			return nil, err
		}
		wantID := string(appendExpandedNodeID(nil, eo.TypeID))
		if string(appendExpandedNodeID(nil, got)) != wantID {
			return nil, mismatch(path+".typeId", quote(wantID)+" (the encoding of "+t.Struct.Elem().Name()+")", tid)
		}
	}
	return eo, nil
}

// goBuiltin maps the Go types gopcua uses for built-in types back to them.
func goBuiltin(t reflect.Type) (ua.TypeID, bool) {
	for id := ua.TypeIDBoolean; id <= ua.TypeIDDiagnosticInfo; id++ {
		if elemType(ValueType{Builtin: id}) == t {
			return id, true
		}
	}
	return 0, false
}

func decodeStruct(x any, v reflect.Value, path string) error {
	m, ok := x.(map[string]any)
	if !ok {
		return mismatch(path, "an object with the fields of "+v.Type().Name(), x)
	}
	for k, fx := range m {
		f, ok := v.Type().FieldByName(k)
		if !ok || !f.IsExported() || len(f.Index) != 1 {
			return &CoercionError{Path: path, Expected: "the fields of " + v.Type().Name(), Given: "field " + quote(k), Err: ErrValue}
		}
		if err := decodeField(fx, v.Field(f.Index[0]), path+"."+k); err != nil {
			return err
		}
	}
	return nil
}

// decodeField sets v (a settable field or slice element) from x.
func decodeField(x any, v reflect.Value, path string) error {
	t := v.Type()
	if t == reflect.TypeFor[*ua.ExtensionObject]() {
		return &CoercionError{Path: path, Expected: "no nested ExtensionObject (its type is unknown here)", Given: describe(x), Err: ErrUnsupported}
	}
	if id, ok := goBuiltin(t); ok {
		val, err := coerceScalar(x, ValueType{Builtin: id, ValueRank: RankScalar}, path)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(val))
		return nil
	}
	switch t.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// Named integer types: the enumerations of package ua.
		n, err := coerceInt(x, intKindType(t.Kind()), path)
		if err != nil {
			return err
		}
		if rv := reflect.ValueOf(n); rv.CanInt() {
			v.SetInt(rv.Int())
		} else {
			v.SetUint(rv.Uint())
		}
		return nil
	case reflect.Pointer:
		if x == nil {
			v.SetZero()
			return nil
		}
		if t.Elem().Kind() == reflect.Struct && t.Elem() != reflect.TypeFor[time.Time]() {
			p := reflect.New(t.Elem())
			if err := decodeStruct(x, p.Elem(), path); err != nil {
				return err
			}
			v.Set(p)
			return nil
		}
	case reflect.Struct:
		return decodeStruct(x, v, path)
	case reflect.Slice:
		if x == nil {
			v.SetZero()
			return nil
		}
		a, ok := x.([]any)
		if !ok {
			return mismatch(path, "an array", x)
		}
		if len(a) > ua.MaxVariantArrayLength {
			return outOfRange(path, "at most "+itoa(int64(ua.MaxVariantArrayLength))+" elements", x)
		}
		s := reflect.MakeSlice(t, len(a), len(a))
		for i, e := range a {
			if err := decodeField(e, s.Index(i), path+"["+itoa(int64(i))+"]"); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	return &CoercionError{Path: path, Expected: "a field type the codec supports", Given: t.String(), Err: ErrUnsupported}
}

// intKindType is the built-in integer type of a reflect kind.
func intKindType(k reflect.Kind) ua.TypeID {
	switch k {
	case reflect.Int8:
		return ua.TypeIDSByte
	case reflect.Int16:
		return ua.TypeIDInt16
	case reflect.Int32:
		return ua.TypeIDInt32
	case reflect.Int64:
		return ua.TypeIDInt64
	case reflect.Uint8:
		return ua.TypeIDByte
	case reflect.Uint16:
		return ua.TypeIDUint16
	case reflect.Uint32:
		return ua.TypeIDUint32
	}
	return ua.TypeIDUint64
}
