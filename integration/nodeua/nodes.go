package nodeua

import (
	"strconv"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Node names: the string identifiers of the test nodes in the test namespace
// (Server.NodeID turns a name into a NodeId, Server.ExpandedNodeID into
// "nsu=…;s=…"). Browse paths are given from the Objects folder.
const (
	// NodeTypes is the folder Objects/Types holding one variable per
	// built-in type (see TypeVariables).
	NodeTypes = "Types"
	// NodeLine1 is the folder Objects/Line1, for browse-path tests.
	NodeLine1 = "Line1"
	// NodeMotor1 is the object Objects/Line1/Motor1 (Motor2 is its sibling).
	NodeMotor1 = "Line1.Motor1"
	// NodeMotor1Speed is Objects/Line1/Motor1/Speed: Double, writable, 1500.
	NodeMotor1Speed = "Line1.Motor1.Speed"
	// NodeMotor1Running is Objects/Line1/Motor1/Running: Boolean, writable,
	// true.
	NodeMotor1Running = "Line1.Motor1.Running"
	// NodeMotor2Speed is Objects/Line1/Motor2/Speed: Double, writable, 750.
	NodeMotor2Speed = "Line1.Motor2.Speed"
	// NodeMotor2Running is Objects/Line1/Motor2/Running: Boolean, writable,
	// true.
	NodeMotor2Running = "Line1.Motor2.Running"
	// NodeReadOnly is Objects/ReadOnly: Int32 42, AccessLevel CurrentRead
	// only. Writing it fails with BadNotWritable.
	NodeReadOnly = "ReadOnly"
	// NodeOperatorOnly is Objects/OperatorOnly: Double 10, writable by
	// RoleOperator users only; anyone else gets BadUserAccessDenied.
	NodeOperatorOnly = "OperatorOnly"
	// NodeCounter is Objects/Counter: UInt32, read-only for clients,
	// incremented by one every Config.CounterInterval starting at
	// Config.CounterStart. Its MinimumSamplingInterval is 0: a monitored
	// item with sampling interval 0 sees every value.
	NodeCounter = "Counter"
	// NodeGen is the folder Objects/Gen of the Config.GeneratedNodes
	// variables (see GenNode).
	NodeGen = "Gen"
	// NodeMethods is the object Objects/Methods, the object to call
	// NodeAdd on.
	NodeMethods = "Methods"
	// NodeAdd is the method Objects/Methods/Add(a Double, b Double) →
	// (sum Double).
	NodeAdd = "Methods.Add"
)

// Values of the nodes above.
const (
	ReadOnlyValue     int32   = 42
	OperatorOnlyValue float64 = 10
	Motor1SpeedValue  float64 = 1500
	Motor2SpeedValue  float64 = 750
)

// GenNode returns the name of generated variable i: "Gen.<i>", an Int32 of
// value i, browse name "N<i>", writable.
func GenNode(i int) string { return "Gen." + strconv.Itoa(i) }

// TypeVariable is one variable of the Types folder.
type TypeVariable struct {
	// Name is the node name, "Types.<BrowseName>".
	Name string
	// BrowseName is the browse name in the test namespace, e.g. "Int32".
	BrowseName string
	// DataType is the variable's DataType (a built-in type).
	DataType ua.TypeID
	// ValueRank is -1 (scalar), 1 (array) or 2 (matrix).
	ValueRank int32
	// Value is the initial value.
	Value *ua.Variant
}

// TypeVariables returns the variables of the Types folder with their
// initial values, for a server whose test namespace has index
// namespaceIndex (Server.NamespaceIndex; it appears in the ExpandedNodeId
// value). All are writable.
//
//	name                  type            value
//	Types.Boolean         Boolean         true
//	Types.SByte           SByte           -100
//	Types.Byte            Byte            200
//	Types.Int16           Int16           -30000
//	Types.UInt16          UInt16          60000
//	Types.Int32           Int32           -2000000000
//	Types.UInt32          UInt32          4000000000
//	Types.Int64           Int64           -9000000000000000000
//	Types.UInt64          UInt64          18000000000000000000
//	Types.Float           Float           3.25
//	Types.Double          Double          3.141592653589793
//	Types.String          String          "Grüße, OPC UA ✓"
//	Types.DateTime        DateTime        2024-01-02T03:04:05.678Z
//	Types.Guid            Guid            72962B91-FA75-4AE6-8D28-B404DC7DAF63
//	Types.ByteString      ByteString      00 01 02 fe ff
//	Types.XmlElement      XmlElement      <a>1</a>
//	Types.NodeId          NodeId          ns=1;s=rcbridge
//	Types.ExpandedNodeId  ExpandedNodeId  ns=<namespaceIndex>;s=Types.Int32 (no URI: node-opcua 2.186.4 drops it)
//	Types.StatusCode      StatusCode      BadOutOfRange (0x803C0000)
//	Types.QualifiedName   QualifiedName   1:rcbridge
//	Types.LocalizedText   LocalizedText   de-DE "Hallo Welt"
//	Types.Int32Array      Int32[5]        [1 -2 3 2147483647 -2147483648]
//	Types.StringArray     String[3]       ["a" "b" "ç"]
//	Types.DoubleMatrix    Double[2][3]    [[1.5 2.5 3.5] [4.5 5.5 6.5]]
func TypeVariables(namespaceIndex uint16) []TypeVariable {
	scalar := func(name string, t ua.TypeID, v any) TypeVariable {
		return TypeVariable{Name: "Types." + name, BrowseName: name, DataType: t, ValueRank: -1, Value: ua.MustVariant(v)}
	}
	return []TypeVariable{
		scalar("Boolean", ua.TypeIDBoolean, true),
		scalar("SByte", ua.TypeIDSByte, int8(-100)),
		scalar("Byte", ua.TypeIDByte, uint8(200)),
		scalar("Int16", ua.TypeIDInt16, int16(-30000)),
		scalar("UInt16", ua.TypeIDUint16, uint16(60000)),
		scalar("Int32", ua.TypeIDInt32, int32(-2000000000)),
		scalar("UInt32", ua.TypeIDUint32, uint32(4000000000)),
		scalar("Int64", ua.TypeIDInt64, int64(-9000000000000000000)),
		scalar("UInt64", ua.TypeIDUint64, uint64(18000000000000000000)),
		scalar("Float", ua.TypeIDFloat, float32(3.25)),
		scalar("Double", ua.TypeIDDouble, 3.141592653589793),
		scalar("String", ua.TypeIDString, "Grüße, OPC UA ✓"),
		scalar("DateTime", ua.TypeIDDateTime, time.Date(2024, 1, 2, 3, 4, 5, 678_000_000, time.UTC)),
		scalar("Guid", ua.TypeIDGUID, ua.NewGUID("72962B91-FA75-4AE6-8D28-B404DC7DAF63")),
		scalar("ByteString", ua.TypeIDByteString, []byte{0x00, 0x01, 0x02, 0xfe, 0xff}),
		scalar("XmlElement", ua.TypeIDXMLElement, ua.XMLElement("<a>1</a>")),
		scalar("NodeId", ua.TypeIDNodeID, ua.NewStringNodeID(1, "rcbridge")),
		scalar("ExpandedNodeId", ua.TypeIDExpandedNodeID,
			ua.NewExpandedNodeID(ua.NewStringNodeID(namespaceIndex, "Types.Int32"), "", 0)),
		scalar("StatusCode", ua.TypeIDStatusCode, ua.StatusBadOutOfRange),
		scalar("QualifiedName", ua.TypeIDQualifiedName, &ua.QualifiedName{NamespaceIndex: 1, Name: "rcbridge"}),
		scalar("LocalizedText", ua.TypeIDLocalizedText, ua.NewLocalizedTextWithLocale("Hallo Welt", "de-DE")),
		{Name: "Types.Int32Array", BrowseName: "Int32Array", DataType: ua.TypeIDInt32, ValueRank: 1,
			Value: ua.MustVariant([]int32{1, -2, 3, 2147483647, -2147483648})},
		{Name: "Types.StringArray", BrowseName: "StringArray", DataType: ua.TypeIDString, ValueRank: 1,
			Value: ua.MustVariant([]string{"a", "b", "ç"})},
		{Name: "Types.DoubleMatrix", BrowseName: "DoubleMatrix", DataType: ua.TypeIDDouble, ValueRank: 2,
			Value: ua.MustVariant([][]float64{{1.5, 2.5, 3.5}, {4.5, 5.5, 6.5}})},
	}
}
