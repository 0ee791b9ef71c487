package rctest

import (
	"context"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
)

// directClient connects gopcua's own client to srv's ListenDirect address.
func directClient(t *testing.T, ctx context.Context, addr string) *opcua.Client {
	t.Helper()
	cl, err := opcua.NewClient("opc.tcp://"+addr, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = cl.Close(ctx)
	})
	return cl
}

// monitor subscribes to node and returns the subscription, the monitored
// item id and the notification channel.
func monitor(t *testing.T, ctx context.Context, cl *opcua.Client, node *ua.NodeID) (*opcua.Subscription, uint32, chan *opcua.PublishNotificationData) {
	t.Helper()
	notes := make(chan *opcua.PublishNotificationData, 64)
	sub, err := cl.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, notes)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, opcua.NewMonitoredItemCreateRequestWithDefaults(node, ua.AttributeIDValue, 1))
	if err != nil || res.Results[0].StatusCode != ua.StatusOK {
		t.Fatalf("Monitor: %v, %v", res, err)
	}
	return sub, res.Results[0].MonitoredItemID, notes
}

// awaitValue waits for a data change carrying want.
func awaitValue(t *testing.T, ctx context.Context, notes chan *opcua.PublishNotificationData, want any) {
	t.Helper()
	for {
		select {
		case n := <-notes:
			if n.Error != nil {
				t.Fatal(n.Error)
			}
			if dc, ok := n.Value.(*ua.DataChangeNotification); ok {
				for _, item := range dc.MonitoredItems {
					if item.Value.Value.Value() == want {
						return
					}
				}
			}
		case <-ctx.Done():
			t.Fatalf("no notification with %v", want)
		}
	}
}

// TestSubscriptionGuards: requests gopcua's server would crash on get
// error results instead.
func TestSubscriptionGuards(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := directClient(t, ctx, addr)
	sub, itemID, notes := monitor(t, ctx, cl, pvID)
	pv.set(3)
	srv.Changed(pvID)
	awaitValue(t, ctx, notes, 3.0)

	send := func(req ua.Request) ua.Response {
		t.Helper()
		var res ua.Response
		if err := cl.Send(ctx, req, func(r ua.Response) error { res = r; return nil }); err != nil {
			t.Fatalf("%T: %v", req, err)
		}
		return res
	}
	mode := send(&ua.SetMonitoringModeRequest{SubscriptionID: sub.SubscriptionID, MonitoringMode: ua.MonitoringModeSampling,
		MonitoredItemIDs: []uint32{itemID, 9999}}).(*ua.SetMonitoringModeResponse)
	if len(mode.Results) != 2 || mode.Results[0] != ua.StatusOK || mode.Results[1] != ua.StatusBadMonitoredItemIDInvalid {
		t.Errorf("SetMonitoringMode results %v", mode.Results)
	}
	del := send(&ua.DeleteMonitoredItemsRequest{SubscriptionID: sub.SubscriptionID, MonitoredItemIDs: []uint32{9999, itemID, itemID}}).(*ua.DeleteMonitoredItemsResponse)
	if len(del.Results) != 3 || del.Results[0] != ua.StatusBadMonitoredItemIDInvalid || del.Results[1] != ua.StatusOK {
		t.Errorf("DeleteMonitoredItems results %v", del.Results)
	}
	if wrong := send(&ua.DeleteMonitoredItemsRequest{SubscriptionID: sub.SubscriptionID + 1, MonitoredItemIDs: []uint32{itemID}}).(*ua.DeleteMonitoredItemsResponse); wrong.Results[0] != ua.StatusBadMonitoredItemIDInvalid {
		t.Errorf("delete of a deleted item: %v", wrong.Results)
	}

	// A session the server does not know never reaches gopcua's handler.
	stale := &ua.RequestHeader{AuthenticationToken: ua.NewNumericNodeID(0, 424242)}
	guarded := srv.withSession(func() server.Handler {
		t.Error("the handler ran for an unknown session")
		return nil
	})
	for _, req := range []ua.Request{
		&ua.CreateSubscriptionRequest{RequestHeader: stale},
		&ua.DeleteSubscriptionsRequest{RequestHeader: stale, SubscriptionIDs: []uint32{sub.SubscriptionID}},
		&ua.CreateMonitoredItemsRequest{RequestHeader: stale, SubscriptionID: sub.SubscriptionID},
		&ua.DeleteMonitoredItemsRequest{RequestHeader: stale, SubscriptionID: sub.SubscriptionID, MonitoredItemIDs: []uint32{itemID}},
	} {
		if _, err := guarded(nil, req, 1); err != ua.StatusBadSessionIDInvalid {
			t.Errorf("%T from an unknown session: %v", req, err)
		}
	}
}
