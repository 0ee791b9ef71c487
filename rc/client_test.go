package rc_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rcbridge/rcbridge/rc"
	"github.com/rcbridge/rcbridge/rc/rctest"
)

func TestBuildNone(t *testing.T) {
	srv := newServer(t, rctest.Options{})
	f := newFactory(t, rc.ClientConfig{})
	c, _ := build(t, f, srv)

	if c.ServerURI() != rctest.DefaultServerURI {
		t.Errorf("ServerURI = %q", c.ServerURI())
	}
	if c.SessionID() == nil {
		t.Error("no session id")
	}
	ns := c.NamespaceArray()
	if len(ns) < 2 || ns[0] != "http://opcfoundation.org/UA/" || !slices.Contains(ns, rctest.DefaultNamespaceURI) {
		t.Errorf("NamespaceArray = %q", ns)
	}
	if got := c.OperationLimits().MaxNodesPerRead; got != rctest.MaxNodesPerRead {
		t.Errorf("MaxNodesPerRead = %d, want %d", got, rctest.MaxNodesPerRead)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
	if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Err(); !errors.Is(err, rc.ErrClosed) {
		t.Errorf("Err after Close = %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if _, err := c.ReadValues(ctxTimeout(t, time.Second), ua.NewNumericNodeID(0, 2258)); !errors.Is(err, rc.ErrClosed) {
		t.Errorf("Read after Close: %v, want rc.ErrClosed", err)
	}
}
