package rc

import (
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// EventFields is one event of an event monitored item: the values of the
// fields its EventFilter selected, in the order of the select clauses (a
// field the event does not have is an empty Variant). Specification:
// Part 4, 7.20.3 (EventFieldList).
type EventFields struct {
	ClientHandle uint32
	Fields       []*ua.Variant
}

// SelectEventFields returns an EventFilter that selects the named fields of
// BaseEventType (browse names in namespace 0: "EventId", "EventType",
// "SourceNode", "SourceName", "Time", "ReceiveTime", "Message",
// "Severity", …) and has no where clause: every event is reported.
// Specification: Part 4, 7.22.3.
func SelectEventFields(names ...string) *ua.EventFilter {
	f := &ua.EventFilter{WhereClause: &ua.ContentFilter{}}
	for _, name := range names {
		f.SelectClauses = append(f.SelectClauses, &ua.SimpleAttributeOperand{
			TypeDefinitionID: ua.NewNumericNodeID(0, id.BaseEventType),
			BrowsePath:       []*ua.QualifiedName{{NamespaceIndex: 0, Name: name}},
			AttributeID:      ua.AttributeIDValue,
		})
	}
	return f
}

// eventFields converts an EventNotificationList's events.
func eventFields(l *ua.EventNotificationList) []EventFields {
	out := make([]EventFields, 0, len(l.Events))
	for _, e := range l.Events {
		if e != nil {
			out = append(out, EventFields{ClientHandle: e.ClientHandle, Fields: e.EventFields})
		}
	}
	return out
}
