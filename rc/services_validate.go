package rc

import (
	"errors"
	"fmt"

	"github.com/gopcua/opcua/ua"
)

// ErrInvalidRequest means a request had a missing (nil) field that the
// service needs. gopcua's encoder would panic on it or send a malformed
// message, so such requests are refused before they reach the wire.
var ErrInvalidRequest = errors.New("rc: invalid request")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
}

// nullNodeID returns n, or the null NodeId when n is nil.
func nullNodeID(n *ua.NodeID) *ua.NodeID {
	if n == nil {
		return ua.NewTwoByteNodeID(0)
	}
	return n
}

// readValueIDs returns nodes with defaults filled in: AttributeID 0 means
// Value, a nil DataEncoding is the default encoding. It copies only when a
// default is missing, never modifying the caller's values.
func readValueIDs(nodes []*ua.ReadValueID) ([]*ua.ReadValueID, error) {
	complete := true
	for i, rv := range nodes {
		if rv == nil || rv.NodeID == nil {
			return nil, invalid("NodesToRead[%d] has no NodeId", i)
		}
		complete = complete && rv.AttributeID != 0 && rv.DataEncoding != nil
	}
	if complete {
		return nodes, nil
	}
	out := make([]*ua.ReadValueID, len(nodes))
	for i, rv := range nodes {
		cp := *rv
		if cp.AttributeID == 0 {
			cp.AttributeID = ua.AttributeIDValue
		}
		if cp.DataEncoding == nil {
			cp.DataEncoding = &ua.QualifiedName{}
		}
		out[i] = &cp
	}
	return out, nil
}

// writeValues copies nodes with defaults filled in: AttributeID 0 means
// Value.
func writeValues(nodes []*ua.WriteValue) ([]*ua.WriteValue, error) {
	out := make([]*ua.WriteValue, len(nodes))
	for i, wv := range nodes {
		switch {
		case wv == nil || wv.NodeID == nil:
			return nil, invalid("NodesToWrite[%d] has no NodeId", i)
		case wv.Value == nil:
			return nil, invalid("NodesToWrite[%d] (%s) has no DataValue", i, wv.NodeID)
		case wv.Value.EncodingMask&ua.DataValueValue != 0 && wv.Value.Value == nil:
			return nil, invalid("NodesToWrite[%d] (%s) has a nil Variant", i, wv.NodeID)
		}
		cp := *wv
		if cp.AttributeID == 0 {
			cp.AttributeID = ua.AttributeIDValue
		}
		out[i] = &cp
	}
	return out, nil
}

func checkMethods(methods []*ua.CallMethodRequest) error {
	for i, m := range methods {
		if m == nil || m.ObjectID == nil || m.MethodID == nil {
			return invalid("MethodsToCall[%d] needs ObjectId and MethodId", i)
		}
		for j, a := range m.InputArguments {
			if a == nil {
				return invalid("MethodsToCall[%d].InputArguments[%d] is nil", i, j)
			}
		}
	}
	return nil
}

// viewDescription returns v with a null ViewId filled in, or the default
// view for nil.
func viewDescription(v *ua.ViewDescription) *ua.ViewDescription {
	if v == nil {
		return &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)}
	}
	cp := *v
	cp.ViewID = nullNodeID(cp.ViewID)
	return &cp
}

// browseDescriptions copies descs; a nil ReferenceTypeId means all
// references.
func browseDescriptions(descs []*ua.BrowseDescription) ([]*ua.BrowseDescription, error) {
	out := make([]*ua.BrowseDescription, len(descs))
	for i, d := range descs {
		if d == nil || d.NodeID == nil {
			return nil, invalid("NodesToBrowse[%d] has no NodeId", i)
		}
		cp := *d
		cp.ReferenceTypeID = nullNodeID(cp.ReferenceTypeID)
		out[i] = &cp
	}
	return out, nil
}

// browsePaths copies paths; a nil ReferenceTypeId in an element means any
// reference.
func browsePaths(paths []*ua.BrowsePath) ([]*ua.BrowsePath, error) {
	out := make([]*ua.BrowsePath, len(paths))
	for i, p := range paths {
		if p == nil || p.StartingNode == nil || p.RelativePath == nil {
			return nil, invalid("BrowsePaths[%d] needs StartingNode and RelativePath", i)
		}
		elems := make([]*ua.RelativePathElement, len(p.RelativePath.Elements))
		for j, e := range p.RelativePath.Elements {
			if e == nil || e.TargetName == nil {
				return nil, invalid("BrowsePaths[%d] element %d has no TargetName", i, j)
			}
			cp := *e
			cp.ReferenceTypeID = nullNodeID(cp.ReferenceTypeID)
			elems[j] = &cp
		}
		out[i] = &ua.BrowsePath{StartingNode: p.StartingNode, RelativePath: &ua.RelativePath{Elements: elems}}
	}
	return out, nil
}
