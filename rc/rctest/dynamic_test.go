package rctest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
)

// gauge is a dynamic Double accepting writes in [0, 100].
type gauge struct {
	mu sync.Mutex
	v  float64
}

func (g *gauge) read() *ua.DataValue {
	g.mu.Lock()
	defer g.mu.Unlock()
	return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(g.v)}
}

func (g *gauge) write(v *ua.Variant) ua.StatusCode {
	f, ok := v.Value().(float64)
	switch {
	case !ok:
		return ua.StatusBadTypeMismatch
	case f < 0 || f > 100:
		return ua.StatusBadOutOfRange
	}
	g.set(f)
	return ua.StatusOK
}

func (g *gauge) set(f float64) {
	g.mu.Lock()
	g.v = f
	g.mu.Unlock()
}

func TestDynamicVariable(t *testing.T) {
	srv, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var sp, pv gauge
	obj := srv.AddObject(nil, "Plant")
	spID := srv.AddDynamicVariable(obj, "SetPoint", sp.read, sp.write)
	pvID := srv.AddDynamicVariable(nil, "Value", pv.read, nil)
	static := srv.AddVariable("Static", int32(1), true)

	c := directSession(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	infos, err := c.ReadVariableInfo(ctx, spID, pvID)
	if err != nil {
		t.Fatal(err)
	}
	writable := func(i rc.VariableInfo) bool { return i.UserAccessLevel&ua.AccessLevelTypeCurrentWrite != 0 }
	if infos[0].BuiltinType != ua.TypeIDDouble || infos[0].ValueRank != -1 || !writable(infos[0]) || writable(infos[1]) {
		t.Errorf("variable info = %+v", infos)
	}

	for _, tc := range []struct {
		node *ua.NodeID
		v    any
		want ua.StatusCode
	}{
		{spID, 42.5, ua.StatusOK},
		{spID, 101.0, ua.StatusBadOutOfRange},
		{spID, "fast", ua.StatusBadTypeMismatch},
		{pvID, 1.0, ua.StatusBadUserAccessDenied},
		{static, int32(7), ua.StatusOK}, // other nodes keep gopcua's behaviour
		{ua.NewStringNodeID(srv.NS.ID(), "missing"), 1.0, ua.StatusBadNodeIDUnknown},
	} {
		st, err := c.WriteValue(ctx, tc.node, ua.MustVariant(tc.v))
		if err != nil || st != tc.want {
			t.Errorf("write %v to %v = %v, %v; want %v", tc.v, tc.node, st, err, tc.want)
		}
	}
	dvs, err := c.ReadValues(ctx, spID, static)
	if err != nil {
		t.Fatal(err)
	}
	if dvs[0].Value.Value() != 42.5 || dvs[1].Value.Value() != int32(7) {
		t.Errorf("read back %v, %v; want 42.5 (bad writes changed nothing), 7", dvs[0].Value.Value(), dvs[1].Value.Value())
	}
}

// TestDynamicChanged subscribes with gopcua's own client (dialing directly)
// and checks that Changed produces a notification with the new value.
func TestDynamicChanged(t *testing.T) {
	srv, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var pv gauge
	pvID := srv.AddDynamicVariable(nil, "Value", pv.read, nil)
	addr, err := srv.ListenDirect()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := opcua.NewClient("opc.tcp://"+addr, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close(context.Background())
	notes := make(chan *opcua.PublishNotificationData, 16)
	sub, err := cl.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, notes)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel(context.Background())
	if _, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, opcua.NewMonitoredItemCreateRequestWithDefaults(pvID, ua.AttributeIDValue, 1)); err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for {
		select {
		case n := <-notes:
			if n.Error != nil {
				t.Fatal(n.Error)
			}
			dc, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			for _, item := range dc.MonitoredItems {
				if got := item.Value.Value.Value(); got == want {
					if want == 7 {
						return
					}
					want = 7
					pv.set(7)
					srv.Changed(pvID)
				}
			}
		case <-ctx.Done():
			t.Fatalf("no notification with value %v", want)
		}
	}
}
