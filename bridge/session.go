package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/gopcua/opcua/ua"

	"github.com/rcbridge/rcbridge/mapping"
)

// session is one client session of a supervisor with what the bridge
// derived from it: the resolved nodes, the command targets and the data
// pipeline.
type session struct {
	client Client
	pipe   *pipeline
	// targets maps every item that takes commands to where they go. It is
	// replaced as a whole (after a recreated session) and read by the
	// command worker, hence the pointer swap under the supervisor's lock.
	targets map[*mapping.Item]*target
}

// target is where the commands of one item go in this session.
type target struct {
	node           *ua.NodeID // the variable (writes)
	object, method *ua.NodeID // the method call
	vt             mapping.ValueType
	// err, when set, is why commands to the item are refused now: the
	// node did not resolve, its type is unknown, it is not writable.
	err error
}

// resolved is the outcome of resolving a server's items in one session.
type resolved struct {
	node, object, method []mapping.Resolution // by item index
}

// resolve resolves the node references of items in the session of c.
func resolve(ctx context.Context, c Client, items []*mapping.Item) (resolved, error) {
	refs := make([]mapping.NodeRef, 0, len(items))
	for _, it := range items {
		if it.Kind == mapping.Method {
			refs = append(refs, it.Object, it.Method)
		} else {
			refs = append(refs, it.Node)
		}
	}
	res, err := mapping.Resolve(ctx, c, refs)
	if err != nil {
		return resolved{}, fmt.Errorf("bridge: resolving %d node references: %w", len(refs), err)
	}
	out := resolved{
		node:   make([]mapping.Resolution, len(items)),
		object: make([]mapping.Resolution, len(items)),
		method: make([]mapping.Resolution, len(items)),
	}
	i := 0
	for k, it := range items {
		if it.Kind == mapping.Method {
			out.object[k], out.method[k] = res[i], res[i+1]
			i += 2
		} else {
			out.node[k] = res[i]
			i++
		}
	}
	return out, nil
}

// commandTargets works out the command target of every item that takes
// commands: writable variables get their type from ReadVariableInfo,
// methods their declared argument types.
func commandTargets(ctx context.Context, c Client, items []*mapping.Item, r resolved) (map[*mapping.Item]*target, error) {
	targets := make(map[*mapping.Item]*target)
	var nodes []*ua.NodeID
	var writable []*target
	for k, it := range items {
		switch {
		case it.Kind == mapping.Method:
			t := &target{object: r.object[k].NodeID, method: r.method[k].NodeID}
			switch {
			case r.object[k].Err != nil:
				t.err = fmt.Errorf("%w: object %s: %w", ErrUnavailable, it.Object, r.object[k].Err)
			case r.method[k].Err != nil:
				t.err = fmt.Errorf("%w: method %s: %w", ErrUnavailable, it.Method, r.method[k].Err)
			}
			targets[it] = t
		case it.Writable:
			t := &target{node: r.node[k].NodeID}
			targets[it] = t
			if err := r.node[k].Err; err != nil {
				t.err = fmt.Errorf("%w: node %s: %w", ErrUnavailable, it.Node, err)
				continue
			}
			nodes = append(nodes, t.node)
			writable = append(writable, t)
		}
	}
	if len(nodes) == 0 {
		return targets, nil
	}
	infos, err := c.ReadVariableInfo(ctx, nodes)
	if err != nil {
		return nil, fmt.Errorf("bridge: reading the types of %d writable nodes: %w", len(nodes), err)
	}
	if len(infos) != len(nodes) {
		return nil, fmt.Errorf("bridge: ReadVariableInfo returned %d results for %d nodes", len(infos), len(nodes))
	}
	for i, t := range writable {
		t.vt, t.err = commandType(nodes[i], infos[i])
	}
	return targets, nil
}

// commandType derives what writes to node are coerced to and checks that
// the session may write it at all.
func commandType(node *ua.NodeID, info VariableInfo) (mapping.ValueType, error) {
	if isBad(info.Status) {
		return mapping.ValueType{}, fmt.Errorf("%w: node %s: reading its type: %w", ErrUnavailable, node, info.Status)
	}
	if info.AccessLevel&ua.AccessLevelTypeCurrentWrite == 0 {
		return mapping.ValueType{}, fmt.Errorf("%w: node %s: its AccessLevel does not allow writing: %w", ErrNotWritable, node, ua.StatusBadNotWritable)
	}
	if info.UserAccessLevel&ua.AccessLevelTypeCurrentWrite == 0 {
		return mapping.ValueType{}, fmt.Errorf("%w: node %s: the session's user may not write it: %w", ErrNotWritable, node, ua.StatusBadUserAccessDenied)
	}
	dataType := info.DataType
	if b := info.BuiltinType; b >= ua.TypeIDBoolean && b <= ua.TypeIDDiagnosticInfo && b != ua.TypeIDExtensionObject {
		// The client traced the DataType to a built-in type (a subtype
		// of a built-in type, an enumeration as Int32).
		dataType = ua.NewNumericNodeID(0, uint32(b))
	}
	vt, err := mapping.TypeForNode(dataType, info.ValueRank, info.Value)
	if err != nil {
		return vt, fmt.Errorf("%w: node %s: %w", ErrUnavailable, node, err)
	}
	return vt, nil
}

// plan builds the subscriptions of the items that publish data: one
// monitored item per resolved variable with a data route, at most max per
// subscription. It returns the specs and the client handle table (the
// handle is the index into it).
func plan(items []*mapping.Item, r resolved, cfg ServerConfig) ([]SubscriptionSpec, []*mapping.Item) {
	var handles []*mapping.Item
	var specs []SubscriptionSpec
	for k, it := range items {
		if it.Kind != mapping.Variable || it.Route == "" || r.node[k].Err != nil {
			continue
		}
		if len(specs) == 0 || len(specs[len(specs)-1].Items) >= cfg.MaxItemsPerSubscription {
			specs = append(specs, SubscriptionSpec{PublishingInterval: cfg.PublishingInterval})
		}
		s := &specs[len(specs)-1]
		s.Items = append(s.Items, MonitoredItem{
			Handle:           uint32(len(handles)),
			Node:             r.node[k].NodeID,
			SamplingInterval: it.SamplingInterval,
			QueueSize:        it.QueueSize,
			Deadband:         it.Deadband,
		})
		handles = append(handles, it)
	}
	return specs, handles
}

// errConnection tells a failure of the connection from a service result:
// only the former ends a setup.
func errConnection(c Client, err error) bool {
	var sc ua.StatusCode
	return c.Err() != nil || !errors.As(err, &sc)
}

// isBad reports whether sc is a Bad status code (Part 4, 7.39).
func isBad(sc ua.StatusCode) bool { return sc&0x80000000 != 0 }
