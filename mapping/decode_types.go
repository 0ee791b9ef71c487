package mapping

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/ua"
)

// The command codec for the built-in types that JSON writes as objects or
// structured text: StatusCode, NodeId, ExpandedNodeId, QualifiedName,
// LocalizedText, Variant, DataValue and DiagnosticInfo.

func coerceStatus(x any, path string) (ua.StatusCode, error) {
	const want = "StatusCode ({\"code\": <UInt32>}, a UInt32, or a name such as \"BadOutOfRange\")"
	switch y := x.(type) {
	case json.Number:
		n, err := coerceInt(y, ua.TypeIDUint32, path)
		if err != nil {
			return 0, err
		}
		return ua.StatusCode(n.(uint32)), nil
	case string:
		if sc, ok := statusByName(y); ok {
			return sc, nil
		}
		return 0, mismatch(path, want, x)
	case map[string]any:
		if err := onlyKeys(y, path, "code", "name"); err != nil {
			return 0, err
		}
		c, ok := y["code"]
		if !ok {
			return 0, mismatch(path, want, x)
		}
		return coerceStatus(c, path+".code")
	}
	return 0, mismatch(path, want, x)
}

func statusByName(name string) (ua.StatusCode, bool) {
	if name == "" {
		return 0, false
	}
	for sc := range ua.StatusCodes {
		if StatusName(sc) == name {
			return sc, true
		}
	}
	return 0, false
}

// onlyKeys rejects object members other than allowed.
func onlyKeys(m map[string]any, path string, allowed ...string) error {
	for k := range m {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			return &CoercionError{Path: path, Expected: "an object with members " + joinQuoted(allowed), Given: "member " + quote(k), Err: ErrValue}
		}
	}
	return nil
}

func coerceNodeID(x any, path string) (*ua.NodeID, error) {
	const want = "NodeId (text such as \"ns=2;s=Motor1\" or \"i=85\")"
	s, ok := x.(string)
	if !ok {
		return nil, mismatch(path, want, x)
	}
	ref, err := ParseNodeID(s)
	if err != nil {
		var ve *ValueError
		errors.As(err, &ve)
		return nil, mismatch(path, want+"; "+ve.Reason, x)
	}
	if ref.NeedsNamespaces() {
		return nil, mismatch(path, want+" with the namespace as an index (ns=), not a URI", x)
	}
	return ref.NodeID(nil)
}

func coerceExpandedNodeID(x any, path string) (*ua.ExpandedNodeID, error) {
	const want = "ExpandedNodeId (text such as \"svr=1;nsu=urn:x;i=7\" or \"ns=2;i=7\")"
	s, ok := x.(string)
	if !ok {
		return nil, mismatch(path, want, x)
	}
	var svr uint32
	if strings.HasPrefix(s, "svr=") {
		semi := strings.IndexByte(s, ';')
		n, err := strconv.ParseUint(s[4:max(semi, 4)], 10, 32)
		if semi < 0 || err != nil {
			return nil, mismatch(path, want, x)
		}
		svr = uint32(n)
		s = s[semi+1:]
	}
	ref, err := ParseNodeID(s)
	if err != nil {
		var ve *ValueError
		errors.As(err, &ve)
		return nil, mismatch(path, want+"; "+ve.Reason, x)
	}
	uri := ref.id.nsURI
	ref.id.nsURI = ""
	id, err := ref.NodeID(nil)
	if err != nil {
		return nil, err
	}
	return ua.NewExpandedNodeID(id, uri, svr), nil
}

func coerceQualifiedName(x any, path string) (*ua.QualifiedName, error) {
	const want = "QualifiedName ({\"ns\": <UInt16>, \"name\": <string>})"
	m, ok := x.(map[string]any)
	if !ok {
		return nil, mismatch(path, want, x)
	}
	if err := onlyKeys(m, path, "ns", "name"); err != nil {
		return nil, err
	}
	q := &ua.QualifiedName{}
	if ns, ok := m["ns"]; ok {
		n, err := coerceInt(ns, ua.TypeIDUint16, path+".ns")
		if err != nil {
			return nil, err
		}
		q.NamespaceIndex = n.(uint16)
	}
	name, err := coerceString(m["name"], ua.TypeIDString, path+".name")
	if err != nil {
		return nil, err
	}
	q.Name = name
	return q, nil
}

func coerceLocalizedText(x any, path string) (*ua.LocalizedText, error) {
	switch y := x.(type) {
	case string:
		return ua.NewLocalizedText(y), nil
	case map[string]any:
		if err := onlyKeys(y, path, "locale", "text"); err != nil {
			return nil, err
		}
		locale, err := coerceString(y["locale"], ua.TypeIDString, path+".locale")
		if err != nil {
			return nil, err
		}
		text, err := coerceString(y["text"], ua.TypeIDString, path+".text")
		if err != nil {
			return nil, err
		}
		return ua.NewLocalizedTextWithLocale(text, locale), nil
	}
	return nil, mismatch(path, "LocalizedText ({\"locale\": <string>, \"text\": <string>} or a string)", x)
}

// coerceTypedVariant decodes {"type": "<built-in type>", "value": …}.
func coerceTypedVariant(x any, path string) (*ua.Variant, error) {
	const want = "Variant ({\"type\": <built-in type name>, \"value\": …})"
	m, ok := x.(map[string]any)
	if !ok {
		return nil, mismatch(path, want, x)
	}
	if err := onlyKeys(m, path, "type", "value", "dimensions"); err != nil {
		return nil, err
	}
	name, _ := m["type"].(string)
	if name == "Null" {
		if m["value"] != nil {
			return nil, mismatch(path+".value", "null for type Null", m["value"])
		}
		return &ua.Variant{}, nil
	}
	id, ok := TypeByName(name)
	if !ok {
		return nil, mismatch(path+".type", "a built-in type name such as \"Double\"", m["type"])
	}
	return coerceVariant(m["value"], ValueType{Builtin: id, ValueRank: RankAny}, path+".value")
}

func coerceDataValue(x any, path string) (*ua.DataValue, error) {
	const want = "DataValue ({\"value\": …, \"type\": …, \"status\": …, \"sourceTimestamp\": …, \"serverTimestamp\": …})"
	m, ok := x.(map[string]any)
	if !ok {
		return nil, mismatch(path, want, x)
	}
	if err := onlyKeys(m, path, "value", "type", "dimensions", "status", "sourceTimestamp", "serverTimestamp"); err != nil {
		return nil, err
	}
	dv := &ua.DataValue{}
	inner := map[string]any{"type": m["type"], "value": m["value"]}
	if m["type"] == nil {
		inner["type"] = "Null"
	}
	v, err := coerceTypedVariant(inner, path)
	if err != nil {
		return nil, err
	}
	if v.Type() != ua.TypeIDNull {
		dv.Value = v
	}
	if s, ok := m["status"]; ok {
		if dv.Status, err = coerceStatus(s, path+".status"); err != nil {
			return nil, err
		}
	}
	if dv.SourceTimestamp, err = coerceTime(m["sourceTimestamp"], path+".sourceTimestamp"); err != nil {
		return nil, err
	}
	if dv.ServerTimestamp, err = coerceTime(m["serverTimestamp"], path+".serverTimestamp"); err != nil {
		return nil, err
	}
	dv.UpdateMask()
	return dv, nil
}

// maxDiagnosticDepth bounds nested DiagnosticInfos (Part 6, 5.2.2.12 asks
// decoders for a limit).
const maxDiagnosticDepth = 16

func coerceDiagnosticInfo(x any, path string, depth int) (*ua.DiagnosticInfo, error) {
	const want = "DiagnosticInfo (an object)"
	m, ok := x.(map[string]any)
	if !ok || depth > maxDiagnosticDepth {
		return nil, mismatch(path, want, x)
	}
	if err := onlyKeys(m, path, "symbolicId", "namespaceUri", "locale", "localizedText", "additionalInfo", "innerStatusCode", "innerDiagnosticInfo"); err != nil {
		return nil, err
	}
	d := &ua.DiagnosticInfo{}
	ints := []struct {
		key string
		bit uint8
		dst *int32
	}{
		{"symbolicId", ua.DiagnosticInfoSymbolicID, &d.SymbolicID},
		{"namespaceUri", ua.DiagnosticInfoNamespaceURI, &d.NamespaceURI},
		{"locale", ua.DiagnosticInfoLocale, &d.Locale},
		{"localizedText", ua.DiagnosticInfoLocalizedText, &d.LocalizedText},
	}
	for _, f := range ints {
		if v, ok := m[f.key]; ok {
			n, err := coerceInt(v, ua.TypeIDInt32, path+"."+f.key)
			if err != nil {
				return nil, err
			}
			*f.dst = n.(int32)
			d.EncodingMask |= f.bit
		}
	}
	if v, ok := m["additionalInfo"]; ok {
		s, err := coerceString(v, ua.TypeIDString, path+".additionalInfo")
		if err != nil {
			return nil, err
		}
		d.AdditionalInfo = s
		d.EncodingMask |= ua.DiagnosticInfoAdditionalInfo
	}
	if v, ok := m["innerStatusCode"]; ok {
		sc, err := coerceStatus(v, path+".innerStatusCode")
		if err != nil {
			return nil, err
		}
		d.InnerStatusCode = sc
		d.EncodingMask |= ua.DiagnosticInfoInnerStatusCode
	}
	if v, ok := m["innerDiagnosticInfo"]; ok {
		inner, err := coerceDiagnosticInfo(v, path+".innerDiagnosticInfo", depth+1)
		if err != nil {
			return nil, err
		}
		d.InnerDiagnosticInfo = inner
		d.EncodingMask |= ua.DiagnosticInfoInnerDiagnosticInfo
	}
	return d, nil
}
