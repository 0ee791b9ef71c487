package mapping

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

func benchDataValue() *ua.DataValue {
	dv := &ua.DataValue{
		Value:           ua.MustVariant(1450.25),
		Status:          ua.StatusOK,
		SourceTimestamp: time.Date(2025, 1, 2, 3, 4, 5, 123456700, time.UTC),
		ServerTimestamp: time.Date(2025, 1, 2, 3, 4, 5, 223456700, time.UTC),
	}
	dv.UpdateMask()
	return dv
}

// jsonStatus and jsonMessage are the encoding/json equivalent of the payload
// document, for the side-by-side benchmark.
type jsonStatus struct {
	Code uint32 `json:"code"`
	Name string `json:"name"`
}

type jsonMessage struct {
	Server          string     `json:"server"`
	Node            string     `json:"node"`
	Name            string     `json:"name"`
	Value           any        `json:"value"`
	Type            string     `json:"type"`
	Status          jsonStatus `json:"status"`
	SourceTimestamp time.Time  `json:"sourceTimestamp"`
	ServerTimestamp time.Time  `json:"serverTimestamp"`
}

// BenchmarkEncode measures the payload encoder against encoding/json on the
// same message, in one run: a Double data change with status and both
// timestamps, and a 16-element Double array.
func BenchmarkEncode(b *testing.B) {
	scalar := benchDataValue()
	array := benchDataValue()
	array.Value = ua.MustVariant([]float64{1.5, 2.25, 3, 4.125, 5, 6.5, 7, 8.75, 9, 10.5, 11, 12.25, 13, 14.5, 15, 16.75})
	tab, err := New(Config{Syntax: NATS, Prefix: "rcbridge", Servers: []Server{{URI: "urn:plant:line1"}}, Rows: []Row{
		{Servers: []string{"urn:plant:line1"}, Node: mustRefT(b, "nsu=urn:plant;s=Line1.Speed"), Name: "Speed"},
	}})
	if err != nil {
		b.Fatal(err)
	}
	item := tab.For("urn:plant:line1")[0]
	for _, c := range []struct {
		name string
		dv   *ua.DataValue
	}{{"scalar", scalar}, {"array16", array}} {
		dv := c.dv
		msg := jsonMessage{
			Server: item.ServerURI, Node: item.Node.String(), Name: item.Name,
			Value: dv.Value.Value(), Type: TypeName(dv.Value.Type()),
			Status:          jsonStatus{Code: uint32(dv.Status), Name: StatusName(dv.Status)},
			SourceTimestamp: dv.SourceTimestamp, ServerTimestamp: dv.ServerTimestamp,
		}
		b.Run(c.name+"/rcbridge", func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = item.AppendPayload(buf[:0], dv)
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run(c.name+"/encoding_json_Marshal", func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				out, _ = json.Marshal(&msg)
			}
			b.SetBytes(int64(len(out)))
		})
		b.Run(c.name+"/encoding_json_Encoder", func(b *testing.B) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				_ = enc.Encode(&msg)
			}
			b.SetBytes(int64(buf.Len()))
		})
	}
}

// BenchmarkDecodeWrite measures the command path: envelope, JSON and
// coercion of one Double write.
func BenchmarkDecodeWrite(b *testing.B) {
	payload := []byte(`{"id":"c-17","value":42.5}`)
	vt := ValueType{Builtin: ua.TypeIDDouble, ValueRank: RankScalar}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeWrite(payload, vt); err != nil {
			b.Fatal(err)
		}
	}
}
