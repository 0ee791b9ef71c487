package rc_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

func readTime(c *rc.Client, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := c.ReadValues(ctx, ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime))
	return err
}

func waitDone(t *testing.T, c *rc.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
}

func TestResume(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	f := newFactory(t, rc.ClientConfig{})
	ln := listen(t)
	s, relay := reverseConnect(t, srv, ln)
	c, err := f.Build(ctxTimeout(t, 10*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxTimeout(t, 5*time.Second))
	id0 := c.SessionID()

	parent := t
	resume := func(t *testing.T) (rc.ResumeOutcome, *rctest.Conn, error) {
		t.Helper()
		s, r := reverseConnect(t, srv, ln)
		parent.Cleanup(r.Close) // the relay outlives the subtest
		outcome, err := c.Resume(ctxTimeout(t, 10*time.Second), s)
		return outcome, r, err
	}

	t.Run("AfterDrop", func(t *testing.T) {
		relay.Close()
		waitDone(t, c)
		if !errors.Is(c.Err(), rc.ErrConnectionLost) {
			t.Fatalf("Err = %v", c.Err())
		}
		outcome, r, err := resume(t)
		if err != nil || outcome != rc.SessionResumed {
			t.Fatalf("Resume = %v, %v; want resumed", outcome, err)
		}
		relay = r
		if !c.SessionID().Equal(id0) {
			t.Errorf("session id changed: %v → %v", id0, c.SessionID())
		}
		if err := c.Err(); err != nil {
			t.Errorf("Err after Resume = %v", err)
		}
		if err := readTime(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WhileStalled", func(t *testing.T) {
		// The old connection is frozen, not dropped: Resume must not wait
		// for it, and it must close it.
		relay.Freeze()
		outcome, r, err := resume(t)
		if err != nil || outcome != rc.SessionResumed {
			t.Fatalf("Resume = %v, %v", outcome, err)
		}
		relay.Thaw()
		relay.Wait() // the old relay ends: its client side was closed
		relay = r
		if err := readTime(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WrongServer", func(t *testing.T) {
		s, r := reverseConnectWith(t, srv, ln, rc.Hello{ServerURI: "urn:other", EndpointURL: srv.URL()})
		defer r.Close()
		if _, err := c.Resume(ctxTimeout(t, 5*time.Second), s); !errors.Is(err, rc.ErrWrongServer) {
			t.Fatalf("Resume = %v, want ErrWrongServer", err)
		}
		if err := readTime(c, 5*time.Second); err != nil {
			t.Fatalf("the current connection suffered: %v", err)
		}
	})

	t.Run("SessionGone", func(t *testing.T) {
		if _, err := rc.Send(ctxTimeout(t, 5*time.Second), c, &ua.CloseSessionRequest{DeleteSubscriptions: true}); err != nil {
			t.Fatal(err)
		}
		relay.Close()
		waitDone(t, c)
		outcome, _, err := resume(t)
		if err != nil || outcome != rc.SessionRecreated {
			t.Fatalf("Resume = %v, %v; want recreated", outcome, err)
		}
		if c.SessionID().Equal(id0) {
			t.Error("session id did not change")
		}
		if err := readTime(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("AfterClose", func(t *testing.T) {
		if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		s, r := reverseConnect(t, srv, ln)
		defer r.Close()
		if _, err := c.Resume(ctxTimeout(t, 5*time.Second), s); !errors.Is(err, rc.ErrClosed) {
			t.Fatalf("Resume after Close = %v, want ErrClosed", err)
		}
		if _, err := s.Conn.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Resume did not close the socket: %v", err)
		}
	})
}

// TestListenerBrokerFactory runs the whole chain: the admission Listener and
// Broker hand the server's reverse connections to the Factory, and the
// server's next connection resumes the session.
func TestListenerBrokerFactory(t *testing.T) {
	srv := newServer(t, rctest.Options{EndpointURL: "opc.tcp://plc.invalid:4840"})
	allow, err := rc.NewAllowList(rctest.DefaultServerURI)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := rc.Listen(ctx, "127.0.0.1:0", rc.ListenerConfig{Validator: allow, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := rc.NewBroker(l, rc.BrokerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- b.Run(ctx) }()
	defer func() { cancel(); <-brokerDone }()

	dial := func() *rctest.Conn {
		relay, err := srv.Dial(ctxTimeout(t, 5*time.Second), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(relay.Close)
		return relay
	}
	relay := dial()
	s, err := b.Next(ctxTimeout(t, 5*time.Second), rctest.DefaultServerURI)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newFactory(t, rc.ClientConfig{}).Build(ctxTimeout(t, 10*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxTimeout(t, 5*time.Second))
	if err := readTime(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	relay.Close()
	waitDone(t, c)
	dial()
	s, err = b.Next(ctxTimeout(t, 5*time.Second), rctest.DefaultServerURI)
	if err != nil {
		t.Fatal(err)
	}
	if outcome, err := c.Resume(ctxTimeout(t, 10*time.Second), s); err != nil || outcome != rc.SessionResumed {
		t.Fatalf("Resume = %v, %v", outcome, err)
	}
	if err := readTime(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestNotificationsAfterClose(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	c, _ := build(t, newFactory(t, rc.ClientConfig{}), srv)
	if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	finishes(t, 5*time.Second, func() {
		for range c.Notifications() {
			t.Error("a notification after Close")
		}
	})
	if _, err := c.Subscribe(ctxTimeout(t, time.Second), rc.SubscriptionParams{}); !errors.Is(err, rc.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}
