package rc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// ErrNamespaceUnknown means a namespace URI is not in the server's
// NamespaceArray.
var ErrNamespaceUnknown = errors.New("rc: namespace URI not in the server's NamespaceArray")

// OperationLimits are the server's per-call limits, read at session start
// from Server.ServerCapabilities.OperationLimits. Zero means the server
// declares no limit. Specification: Part 5, 6.3.11 (OperationLimitsType).
type OperationLimits struct {
	MaxNodesPerRead                          uint32
	MaxNodesPerWrite                         uint32
	MaxNodesPerMethodCall                    uint32
	MaxNodesPerBrowse                        uint32
	MaxNodesPerRegisterNodes                 uint32
	MaxNodesPerTranslateBrowsePathsToNodeIDs uint32
	MaxNodesPerNodeManagement                uint32
	MaxMonitoredItemsPerCall                 uint32
	// MaxBrowseContinuationPoints is from ServerCapabilities (Part 5, 6.3.2).
	MaxBrowseContinuationPoints uint16
}

// loadServerInfo reads the NamespaceArray and the OperationLimits. Missing
// or unreadable limits count as "no limit"; the NamespaceArray is required.
func (c *Client) loadServerInfo(ctx context.Context) error {
	// The NamespaceArray first, then each limit in OperationLimits order.
	ids := []uint32{
		id.Server_NamespaceArray,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerMethodCall,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRegisterNodes,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIDs,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerNodeManagement,
		id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
		id.Server_ServerCapabilities_MaxBrowseContinuationPoints,
	}
	nodes := make([]*ua.NodeID, len(ids))
	for i, n := range ids {
		nodes[i] = ua.NewNumericNodeID(0, n)
	}
	// The limits are unknown yet, so batched starts with one call and
	// halves it if the server objects.
	dvs, err := c.ReadAttributes(ctx, ua.AttributeIDValue, nodes...)
	if err != nil {
		return fmt.Errorf("reading NamespaceArray and OperationLimits: %w", err)
	}
	ns, err := namespaceArray(dvs[0])
	if err != nil {
		return err
	}
	u32 := func(i int) uint32 {
		if dv := dvs[i]; dv != nil && !isBad(dv.Status) && dv.Value != nil {
			if v, ok := dv.Value.Value().(uint32); ok {
				return v
			}
		}
		return 0
	}
	lim := OperationLimits{
		MaxNodesPerRead:                          u32(1),
		MaxNodesPerWrite:                         u32(2),
		MaxNodesPerMethodCall:                    u32(3),
		MaxNodesPerBrowse:                        u32(4),
		MaxNodesPerRegisterNodes:                 u32(5),
		MaxNodesPerTranslateBrowsePathsToNodeIDs: u32(6),
		MaxNodesPerNodeManagement:                u32(7),
		MaxMonitoredItemsPerCall:                 u32(8),
	}
	if dv := dvs[9]; dv != nil && !isBad(dv.Status) && dv.Value != nil {
		if v, ok := dv.Value.Value().(uint16); ok {
			lim.MaxBrowseContinuationPoints = v
		}
	}
	c.infoMu.Lock()
	c.namespaces, c.limits = ns, lim
	c.infoMu.Unlock()
	c.log.Debug("server info", "namespaces", ns, "limits", lim)
	return nil
}

func namespaceArray(dv *ua.DataValue) ([]string, error) {
	if dv == nil || dv.Value == nil || isBad(dv.Status) {
		var st ua.StatusCode
		if dv != nil {
			st = dv.Status
		}
		return nil, fmt.Errorf("%w: NamespaceArray unreadable (status %v)", ErrUnexpectedResponse, st)
	}
	ns, ok := dv.Value.Value().([]string)
	if !ok || len(ns) == 0 {
		return nil, fmt.Errorf("%w: NamespaceArray is %T, want a non-empty []string", ErrUnexpectedResponse, dv.Value.Value())
	}
	return ns, nil
}

// OperationLimits returns the limits read at session start.
func (c *Client) OperationLimits() OperationLimits {
	c.infoMu.RLock()
	defer c.infoMu.RUnlock()
	return c.limits
}

// NamespaceArray returns a copy of the server's NamespaceArray as last read
// (at session start or by RefreshNamespaces). Specification: Part 5, 6.3.1.
func (c *Client) NamespaceArray() []string {
	c.infoMu.RLock()
	defer c.infoMu.RUnlock()
	return slices.Clone(c.namespaces)
}

// RefreshNamespaces reads the NamespaceArray again and returns it. Servers
// may add namespaces at run time; indexes of existing ones do not change
// within a session.
func (c *Client) RefreshNamespaces(ctx context.Context) ([]string, error) {
	dvs, err := c.ReadValues(ctx, ua.NewNumericNodeID(0, id.Server_NamespaceArray))
	if err != nil {
		return nil, err
	}
	ns, err := namespaceArray(dvs[0])
	if err != nil {
		return nil, err
	}
	c.infoMu.Lock()
	c.namespaces = ns
	c.infoMu.Unlock()
	return slices.Clone(ns), nil
}

// NamespaceIndex returns the index of a namespace URI in the NamespaceArray.
func (c *Client) NamespaceIndex(uri string) (uint16, error) {
	c.infoMu.RLock()
	defer c.infoMu.RUnlock()
	i := slices.Index(c.namespaces, uri)
	if i < 0 || i > 0xffff {
		return 0, fmt.Errorf("%w: %q", ErrNamespaceUnknown, uri)
	}
	return uint16(i), nil
}

// ParseNodeID parses a node id in the string form of Part 6, 5.3.1.10,
// resolving "nsu=<namespace URI>;" against this session's NamespaceArray:
// "nsu=urn:plant;s=Line1.Speed", "ns=2;i=42", "i=2258".
func (c *Client) ParseNodeID(s string) (*ua.NodeID, error) {
	if strings.HasPrefix(s, "nsu=") {
		uri, rest, ok := strings.Cut(strings.TrimPrefix(s, "nsu="), ";")
		if !ok {
			return nil, fmt.Errorf("rc: node id %q: missing identifier after the namespace URI", s)
		}
		idx, err := c.NamespaceIndex(uri)
		if err != nil {
			return nil, fmt.Errorf("rc: node id %q: %w", s, err)
		}
		s = fmt.Sprintf("ns=%d;%s", idx, rest)
	}
	n, err := ua.ParseNodeID(s)
	if err != nil {
		return nil, fmt.Errorf("rc: node id %q: %w", s, err)
	}
	return n, nil
}

// ResolveExpandedNodeID turns an ExpandedNodeId of this server into a
// NodeId, resolving a namespace URI against the NamespaceArray. Ids on other
// servers (ServerIndex ≠ 0) are rejected.
func (c *Client) ResolveExpandedNodeID(e *ua.ExpandedNodeID) (*ua.NodeID, error) {
	if e == nil || e.NodeID == nil {
		return nil, fmt.Errorf("rc: nil ExpandedNodeId")
	}
	if e.ServerIndex != 0 {
		return nil, fmt.Errorf("rc: ExpandedNodeId %s is on server %d, not this one", e, e.ServerIndex)
	}
	n := ua.NewNodeIDFromExpandedNodeID(e)
	if e.HasNamespaceURI() && e.NamespaceURI != "" {
		idx, err := c.NamespaceIndex(e.NamespaceURI)
		if err != nil {
			return nil, fmt.Errorf("rc: ExpandedNodeId %s: %w", e, err)
		}
		switch n.Type() {
		case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte:
			n = ua.NewNumericNodeID(idx, n.IntID())
		default:
			if err := n.SetNamespace(idx); err != nil {
				return nil, fmt.Errorf("rc: ExpandedNodeId %s: %w", e, err)
			}
		}
	}
	return n, nil
}
