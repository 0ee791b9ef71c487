package natsbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rcbridge/rcbridge/bridge"
)

// newBus opens an adapter for a test and closes it at cleanup.
func newBus(t *testing.T, o Options) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	bus, err := New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bus.Close(ctx)
	})
	return bus
}

// publishWait publishes one batch and returns its confirmation.
func publishWait(t *testing.T, bus bridge.Publisher, msgs ...bridge.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	if err := bus.Publish(ctx, msgs, func(err error) { done <- err }); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatal("batch not confirmed within 20s")
		return nil
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %q: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestJetStreamCreatesStreamAndDeduplicates: New creates the stream and
// the presence bucket, and a message published again with the same MsgID
// is stored once.
func TestJetStreamCreatesStreamAndDeduplicates(t *testing.T) {
	b := startBroker(t, true)
	bus := newBus(t, Options{URLs: []string{b.url()}, JetStream: &JetStreamOptions{Stream: "PLANT", Subjects: []string{"plant.>"}}})
	js, err := jetstream.New(dial(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "PLANT")
	if err != nil {
		t.Fatalf("stream not created: %v", err)
	}
	if cfg := s.CachedInfo().Config; cfg.Duplicates != DefaultDuplicates || cfg.Subjects[0] != "plant.>" || cfg.Storage != jetstream.FileStorage {
		t.Errorf("created stream config %+v", cfg)
	}
	if _, err := js.KeyValue(ctx, DefaultPresenceBucket); err != nil {
		t.Errorf("presence bucket not created: %v", err)
	}

	m := bridge.Message{Route: "plant.line1.temp", Payload: []byte(`{"v":1}`), ID: bridge.MsgID{Server: "line1", Subscription: 7, Sequence: 42, Index: 3}}
	if err := publishWait(t, bus, m); err != nil {
		t.Fatalf("first publish: %v", err)
	}
	if err := publishWait(t, bus, m); err != nil {
		t.Fatalf("republish: %v", err)
	}
	if n := streamMsgs(t, js, "PLANT"); n != 1 {
		t.Errorf("stream holds %d messages after a republish, want 1", n)
	}
	raw, err := s.GetLastMsgForSubject(ctx, "plant.line1.temp")
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get(jetstream.MsgIDHeader); got != "line1/7/42/3" {
		t.Errorf("Nats-Msg-Id = %q, want line1/7/42/3", got)
	}
	m.ID.Index = 4
	if err := publishWait(t, bus, m); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, js, "PLANT"); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}

	other := bridge.Message{Route: "other.x", Payload: []byte("x")}
	if err := bus.Publish(ctx, []bridge.Message{other}, nil); !errors.Is(err, bridge.ErrInvalidMessage) {
		t.Errorf("publish outside the stream's subjects: %v, want ErrInvalidMessage", err)
	}
}

// TestJetStreamRefusedMessageFailsBatch: a message the stream refuses ends
// its batch with the stream's error instead of being re-sent forever.
func TestJetStreamRefusedMessageFailsBatch(t *testing.T) {
	b := startBroker(t, true)
	js, err := jetstream.New(dial(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small.>"}, MaxMsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	var failed uint64
	bus := newBus(t, Options{URLs: []string{b.url()}, JetStream: &JetStreamOptions{Stream: "SMALL", Subjects: []string{"small.>"}},
		Metrics: bridge.BusMetrics{Failed: func(n uint64) { failed += n }}})
	big := bridge.Message{Route: "small.a", Payload: make([]byte, 200), ID: bridge.MsgID{Server: "s", Sequence: 1}}
	small := bridge.Message{Route: "small.a", Payload: []byte("ok"), ID: bridge.MsgID{Server: "s", Sequence: 2}}
	err = publishWait(t, bus, small, big)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("batch with an oversized message ended with %v, want the stream's APIError", err)
	}
	if failed != 2 {
		t.Errorf("Failed counter = %d, want 2", failed)
	}
	small.ID.Sequence = 3
	if err := publishWait(t, bus, small); err != nil {
		t.Errorf("next batch: %v", err)
	}
}

// TestStalledWhenStreamDeleted: with the stream gone the adapter keeps the
// batch, Ready says ErrStalled, and the batch is stored once the stream is
// back.
func TestStalledWhenStreamDeleted(t *testing.T) {
	b := startBroker(t, true)
	bus := newBus(t, Options{URLs: []string{b.url()}, StallTimeout: 200 * time.Millisecond, AckTimeout: 500 * time.Millisecond,
		JetStream: &JetStreamOptions{Stream: "GONE", Subjects: []string{"gone.>"}}})
	js, err := jetstream.New(dial(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "GONE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := bus.Publish(ctx, []bridge.Message{{Route: "gone.a", Payload: []byte("1"), ID: bridge.MsgID{Server: "g", Sequence: 1}}},
		func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !errors.Is(bus.Ready(), bridge.ErrStalled) {
		if time.Now().After(deadline) {
			t.Fatalf("Ready = %v, want ErrStalled", bus.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GONE", Subjects: []string{"gone.>"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("batch after the stream came back: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("batch not confirmed after the stream came back")
	}
	if err := bus.Ready(); err != nil {
		t.Errorf("Ready after recovery: %v", err)
	}
	if n := streamMsgs(t, js, "GONE"); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

// TestCommandWithoutReplySubject: a command published without a reply
// subject is delivered, and answering it says ErrNoReply.
func TestCommandWithoutReplySubject(t *testing.T) {
	b := startBroker(t, false)
	bus := newBus(t, Options{URLs: []string{b.url()}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	if _, err := bus.Subscribe(ctx, []string{"cmd.a"}, func(c bridge.Command) {
		got <- c.Reply(ctx, []byte("x"))
	}); err != nil {
		t.Fatal(err)
	}
	nc := dial(t, b)
	if err := nc.Publish("cmd.a", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, bridge.ErrNoReply) {
			t.Errorf("Reply: %v, want ErrNoReply", err)
		}
	case <-ctx.Done():
		t.Fatal("command not delivered")
	}
	// A request is answered on its reply subject.
	if _, err := bus.Subscribe(ctx, []string{"cmd.b"}, func(c bridge.Command) {
		go func() { _ = c.Reply(ctx, append([]byte("re:"), c.Payload...)) }()
	}); err != nil {
		t.Fatal(err)
	}
	m, err := nc.RequestWithContext(ctx, "cmd.b", []byte("ping"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(m.Data) != "re:ping" {
		t.Errorf("reply %q, want re:ping", m.Data)
	}
}

// TestPresenceExpiresAfterCrash: NATS has no last will, so presence
// entries in the KV bucket carry a TTL and the adapter writes them again
// while it runs. They outlive several TTLs while the bridge is alive and
// are gone (watchers see a delete marker) within about one TTL after its
// connection vanished without a goodbye. A bucket made without a TTL (an
// older rcbridge) gets one.
func TestPresenceExpiresAfterCrash(t *testing.T) {
	const ttl = time.Second
	b := startBroker(t, true)
	js, err := jetstream.New(dial(t, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefaultPresenceBucket, History: 1, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	self := &bridge.Presence{Route: "plant.status.rcbridge", Key: "rcbridge", Server: "urn:bridge"}
	bus := newBus(t, Options{URLs: []string{b.url()}, Self: self,
		JetStream: &JetStreamOptions{Stream: "PLANT", Subjects: []string{"plant.>"}, PresenceTTL: ttl}})
	if err := bus.PublishPresence(ctx, bridge.Presence{Route: "plant.status.line1", Key: "line1", Server: "urn:line1", State: bridge.Online, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, DefaultPresenceBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != ttl || st.LimitMarkerTTL() != ttl || st.History() != 1 {
		t.Fatalf("bucket TTL %s, marker TTL %s, history %d; want %s, %s, 1", st.TTL(), st.LimitMarkerTTL(), st.History(), ttl, ttl)
	}
	w, err := kv.Watch(ctx, "line1")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()

	time.Sleep(3 * ttl) // alive: refreshed every ttl/3
	for _, key := range []string{"line1", "rcbridge"} {
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("key %q gone while the bridge runs: %v", key, err)
		}
		if !strings.Contains(string(e.Value()), `"state":"online"`) {
			t.Errorf("key %q: %s", key, e.Value())
		}
	}

	bus.nc.Close() // the connection vanishes without offline presence: a crash
	deadline := time.Now().Add(10 * ttl)
	for _, key := range []string{"line1", "rcbridge"} {
		for {
			_, err := kv.Get(ctx, key)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("key %q still there %s after the crash: %v", key, 10*ttl, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for {
		select {
		case e := <-w.Updates():
			if e != nil && e.Operation() != jetstream.KeyValuePut {
				return // the watcher saw the entry go
			}
		case <-ctx.Done():
			t.Fatal("the watcher saw no delete marker")
		}
	}
}
