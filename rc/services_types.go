package rc

import (
	"context"
	"errors"
	"fmt"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// ErrDataType means a DataType could not be traced to a built-in type.
var ErrDataType = errors.New("rc: cannot resolve DataType to a built-in type")

// maxTypeDepth bounds the walk up the DataType hierarchy.
const maxTypeDepth = 16

// VariableInfo describes how a Variable's value is typed, for coercing
// command values: its DataType and the built-in type that encodes it, its
// ValueRank and ArrayDimensions, and its access levels. Specification:
// Part 3, 5.6.2 (Variable NodeClass) and Part 6, 5.1.2 (built-in types).
type VariableInfo struct {
	NodeID *ua.NodeID
	// DataType is the DataType attribute.
	DataType *ua.NodeID
	// BuiltinType is the built-in type values of DataType are encoded as:
	// the DataType itself for ns=0 ids 1..25, Int32 for enumerations, the
	// nearest built-in supertype otherwise. It is 0 (TypeIDNull) for the
	// abstract Number, Integer and UInteger, which admit several built-in
	// types, or when Status is Bad.
	BuiltinType ua.TypeID
	// ValueRank: -1 scalar, 1 one-dimensional array, n>1 n dimensions, 0
	// one or more dimensions, -2 scalar or array, -3 scalar or 1-D array.
	ValueRank int32
	// ArrayDimensions is nil when the server does not provide it.
	ArrayDimensions []uint32
	// AccessLevel and UserAccessLevel are the access level bit masks
	// (Part 3, 8.57); UserAccessLevel applies to this session's user.
	AccessLevel     ua.AccessLevelType
	UserAccessLevel ua.AccessLevelType
	// Status is Good, or the Bad status of reading DataType or ValueRank
	// (for example BadNodeIdUnknown, BadAttributeIdInvalid for a node that
	// is not a Variable).
	Status ua.StatusCode
}

// ReadVariableInfo reads DataType, ValueRank, ArrayDimensions, AccessLevel
// and UserAccessLevel of each node and resolves each DataType to its
// built-in type. A node that cannot be read has a Bad Status; the error is
// for the calls as a whole.
func (c *Client) ReadVariableInfo(ctx context.Context, nodes ...*ua.NodeID) ([]VariableInfo, error) {
	attrs := []ua.AttributeID{ua.AttributeIDDataType, ua.AttributeIDValueRank, ua.AttributeIDArrayDimensions,
		ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel}
	req := &ua.ReadRequest{NodesToRead: make([]*ua.ReadValueID, 0, len(nodes)*len(attrs))}
	for _, n := range nodes {
		for _, a := range attrs {
			req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: n, AttributeID: a})
		}
	}
	res, err := c.Read(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]VariableInfo, len(nodes))
	for i, n := range nodes {
		dv := res.Results[i*len(attrs) : (i+1)*len(attrs)]
		vi := VariableInfo{NodeID: n}
		for _, d := range dv[:2] {
			if d == nil {
				vi.Status = ua.StatusBadUnexpectedError
			} else if isBad(d.Status) && vi.Status == ua.StatusGood {
				vi.Status = d.Status
			}
		}
		if vi.Status == ua.StatusGood {
			vi.DataType = dataTypeValue(dv[0])
			rank, ok := variantValue(dv[1]).(int32)
			if vi.DataType == nil || !ok {
				vi.Status = ua.StatusBadDataTypeIDUnknown
			}
			vi.ValueRank = rank
		}
		vi.ArrayDimensions, _ = variantValue(dv[2]).([]uint32)
		if v, ok := variantValue(dv[3]).(uint8); ok {
			vi.AccessLevel = ua.AccessLevelType(v)
		}
		if v, ok := variantValue(dv[4]).(uint8); ok {
			vi.UserAccessLevel = ua.AccessLevelType(v)
		}
		if vi.Status == ua.StatusGood {
			t, err := c.BuiltinType(ctx, vi.DataType)
			if err != nil {
				if errors.Is(err, ErrConnectionLost) || ctx.Err() != nil {
					return nil, err
				}
				vi.Status = ua.StatusBadDataTypeIDUnknown
				c.log.Debug("DataType not resolved", "node", n.String(), "err", err)
			}
			vi.BuiltinType = t
		}
		out[i] = vi
	}
	return out, nil
}

// variantValue returns the value of a good DataValue, or nil.
func variantValue(dv *ua.DataValue) any {
	if dv == nil || isBad(dv.Status) || dv.Value == nil {
		return nil
	}
	return dv.Value.Value()
}

// dataTypeValue reads a DataType attribute, which should be a NodeId; some
// servers send an ExpandedNodeId.
func dataTypeValue(dv *ua.DataValue) *ua.NodeID {
	switch v := variantValue(dv).(type) {
	case *ua.NodeID:
		return v
	case *ua.ExpandedNodeID:
		if v != nil && v.NodeID != nil && !v.HasNamespaceURI() {
			return ua.NewNodeIDFromExpandedNodeID(v)
		}
	}
	return nil
}

// BuiltinType returns the built-in type that encodes values of dataType,
// walking up the HasSubtype hierarchy when needed (Part 3, 5.8.2). Results
// are cached for the session. See VariableInfo.BuiltinType.
func (c *Client) BuiltinType(ctx context.Context, dataType *ua.NodeID) (ua.TypeID, error) {
	var walked []string
	cur := dataType
	for range maxTypeDepth {
		if t, ok := builtinOf(cur); ok {
			c.cacheTypes(walked, t)
			return t, nil
		}
		key := cur.String()
		c.typesMu.Lock()
		t, ok := c.types[key]
		c.typesMu.Unlock()
		if ok {
			c.cacheTypes(walked, t)
			return t, nil
		}
		walked = append(walked, key)
		refs, err := c.BrowseAll(ctx, &ua.BrowseDescription{
			NodeID:          cur,
			BrowseDirection: ua.BrowseDirectionInverse,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HasSubtype),
			IncludeSubtypes: false,
			NodeClassMask:   uint32(ua.NodeClassDataType),
			ResultMask:      uint32(ua.BrowseResultMaskAll),
		})
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrDataType, dataType, err)
		}
		if len(refs) == 0 || refs[0] == nil {
			return 0, fmt.Errorf("%w: %s: %s has no supertype", ErrDataType, dataType, cur)
		}
		if cur, err = c.ResolveExpandedNodeID(refs[0].NodeID); err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrDataType, dataType, err)
		}
	}
	return 0, fmt.Errorf("%w: %s: hierarchy deeper than %d", ErrDataType, dataType, maxTypeDepth)
}

func (c *Client) cacheTypes(keys []string, t ua.TypeID) {
	if len(keys) == 0 {
		return
	}
	c.typesMu.Lock()
	defer c.typesMu.Unlock()
	if c.types == nil {
		c.types = make(map[string]ua.TypeID)
	}
	for _, k := range keys {
		c.types[k] = t
	}
}

// builtinOf maps the DataTypes of namespace 0 that end the walk.
func builtinOf(n *ua.NodeID) (ua.TypeID, bool) {
	if n == nil || n.Namespace() != 0 {
		return 0, false
	}
	switch t := n.Type(); t {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
	default:
		return 0, false
	}
	switch v := n.IntID(); {
	case v >= 1 && v <= 25:
		return ua.TypeID(v), true
	case v == id.Enumeration:
		return ua.TypeIDInt32, true
	case v == id.Number, v == id.Integer, v == id.UInteger:
		return ua.TypeIDNull, true
	}
	return 0, false
}
