package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestMsgIDText(t *testing.T) {
	tests := []struct {
		id   MsgID
		want string
	}{
		{MsgID{}, ""},
		{MsgID{Server: "line1", Subscription: 7, Sequence: 42, Index: 0}, "line1/7/42/0"},
		{MsgID{Server: "a.b", Subscription: 4294967295, Sequence: 1, Index: 999}, "a.b/4294967295/1/999"},
	}
	for _, tc := range tests {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.id, got, tc.want)
		}
		b, err := tc.id.AppendText([]byte("x:"))
		if err != nil || string(b) != "x:"+tc.want {
			t.Errorf("AppendText = %q, %v", b, err)
		}
	}
	if !(MsgID{}).IsZero() || (MsgID{Index: 1}).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestQoSValid(t *testing.T) {
	for q, want := range map[QoS]bool{AtMostOnce: true, AtLeastOnce: true, ExactlyOnce: true, 3: false, 255: false} {
		if q.Valid() != want {
			t.Errorf("QoS(%d).Valid() = %v", q, !want)
		}
	}
}

func TestPresenceJSON(t *testing.T) {
	since := time.Date(2025, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))
	p := Presence{Route: "r", Key: "k", Server: `urn:"plant"`, State: Resuming, Since: since}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"server":"urn:\"plant\"","state":"resuming","since":"2025-01-02T02:04:05.0000006Z"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var back Presence
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Server != p.Server || back.State != p.State || !back.Since.Equal(since) || back.Route != "" {
		t.Errorf("round trip %+v", back)
	}
	will, _ := json.Marshal(Presence{State: Offline})
	if string(will) != `{"state":"offline"}` {
		t.Errorf("presence without time or server: %s", will)
	}
	for _, bad := range []string{`{"state":"sleeping"}`, `{"state":"online","since":"yesterday"}`, `[`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
	if _, err := PresenceState(9).MarshalText(); err == nil {
		t.Error("unknown state marshalled")
	}
	if s := PresenceState(9).String(); s != "PresenceState(9)" {
		t.Errorf("String() = %q", s)
	}
}

func TestCounterNilSafe(t *testing.T) {
	var m BusMetrics
	m.Published.Add(3) // nil: nothing happens
	var n uint64
	m.Confirmed = func(d uint64) { n += d }
	m.Confirmed.Add(2)
	m.Confirmed.Add(0)
	if n != 2 {
		t.Errorf("counted %d, want 2", n)
	}
}

func TestCommandReply(t *testing.T) {
	c := NewCommand("r", []byte("p"), nil)
	if err := c.Reply(context.Background(), nil); !errors.Is(err, ErrNoReply) {
		t.Errorf("Reply without a route: %v", err)
	}
	var got []byte
	c = NewCommand("r", []byte("p"), func(_ context.Context, b []byte) error { got = b; return nil })
	if err := c.Reply(context.Background(), []byte("ok")); err != nil || string(got) != "ok" {
		t.Errorf("Reply: %v %q", err, got)
	}
}
