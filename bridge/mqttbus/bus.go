// Package mqttbus is the MQTT bus adapter of the bridge, built on
// paho.mqtt.golang (MQTT 3.1.1).
//
// Every message carries its own QoS and retain flag. A QoS 1 message is
// confirmed by its PUBACK, QoS 2 by its PUBCOMP, QoS 0 once written to the
// socket. The session is persistent (clean session off): QoS 1/2 messages
// not yet acknowledged are sent again after a reconnect, and batches
// published while the broker is unreachable wait in the bounded in-flight
// window until those are acknowledged, so that order is kept.
package mqttbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/buskit"
)

// Bus is an MQTT bus adapter; it implements bridge.Bus. Create it with New
// and end it with Close.
type Bus struct {
	o     Options
	log   *slog.Logger
	m     bridge.BusMetrics
	c     mqtt.Client
	conns *conns // every socket paho opened
	store *ackStore
	win   *buskit.Window

	// pubMu serialises calls into paho's Publish (the store's arm/disarm
	// depends on it) and keeps the order of batches on the wire.
	pubMu sync.Mutex

	// holding: new batches wait in held (a new connection is being
	// opened, connection lost, re-send running). Written under mu, read
	// without it on the send path.
	holding atomic.Bool

	mu      sync.Mutex
	closing bool
	held    []heldPart // waiting batches, in order
	pending []*batch   // unconfirmed batches in accept order
	drained chan struct{}
	cmdErr  error // last failure to subscribe the command routes again

	qos0    chan qos0Wait // QoS 0 tokens, in write order, to the token waiter
	wake    chan struct{}
	closeCh chan struct{}
	stopCh  chan struct{}
	closer  buskit.Once
	wg      sync.WaitGroup

	lastConnErr   atomic.Pointer[error] // why the latest connection attempt failed
	everConnected atomic.Bool
	resub         atomic.Bool         // command routes must be subscribed again
	repub         atomic.Bool         // presence must be sent again
	presence      buskit.PresenceBook // latest presence per route, sent in order

	cmd commands
}

var _ bridge.Bus = (*Bus)(nil)

// batch is one accepted Publish call until it is confirmed or failed.
type batch struct {
	msgs    []bridge.Message
	confirm bridge.ConfirmFunc
	slots   int
	since   time.Time
	parts   int // acknowledgements awaited: QoS 1/2 messages, QoS 0 groups, and the send guard
	done    bool
}

// heldPart is a batch, from message from on, waiting to be sent.
type heldPart struct {
	b    *batch
	from int
}

// qos0Wait is a group of QoS 0 messages of one batch written in one go.
type qos0Wait struct {
	b    *batch
	toks []mqtt.Token
}

// New connects to the broker, waiting for the first connection until ctx
// is done. Later disconnects are repaired by paho without limit until
// Close; the command routes are subscribed again after every connect.
func New(ctx context.Context, o Options) (*Bus, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	tlsCfg, err := buskit.TLSConfig(o.TLS, o.TLSCAFile, o.TLSCertFile, o.TLSKeyFile, "")
	if err != nil {
		return nil, fmt.Errorf("mqttbus: %w", err)
	}
	b := &Bus{
		o:       o,
		log:     o.Logger.With("bus", "mqtt"),
		m:       o.Metrics,
		win:     buskit.NewWindow(o.MaxInFlight),
		qos0:    make(chan qos0Wait, o.MaxInFlight),
		wake:    make(chan struct{}, 1),
		closeCh: make(chan struct{}),
		stopCh:  make(chan struct{}),
	}
	b.store = newAckStore(b.onAck, b.onResume)
	b.conns = newConns(o.ConnectTimeout, tlsCfg, b.onDial)
	b.cmd.init(o.CommandQueue)

	opts := mqtt.NewClientOptions().
		SetClientID(o.ClientID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetStore(b.store).
		SetOrderMatters(true).
		SetResumeSubs(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(o.MaxReconnectInterval).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(o.KeepAlive / 2).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(o.WriteTimeout).
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(b.onConnectionLost).
		SetDefaultPublishHandler(b.onStray).
		SetConnectionNotificationHandler(b.onNotification)
	for _, u := range o.Brokers {
		opts.AddBroker(u)
	}
	if o.Username != "" {
		opts.SetUsername(o.Username).SetPassword(o.Password)
	}
	opts.SetCustomOpenConnectionFn(b.conns.dial)
	if o.Self != nil {
		will := *o.Self
		will.State, will.Since = bridge.Offline, time.Time{}
		payload, err := json.Marshal(will)
		if err != nil {
			return nil, fmt.Errorf("mqttbus: last will: %w", err)
		}
		opts.SetBinaryWill(will.Route, payload, byte(bridge.AtLeastOnce), true)
	}
	b.c = mqtt.NewClient(opts)
	giveUp := func() {
		b.c.Disconnect(0)
		b.conns.closeAll() // ends a connection attempt paho still runs
	}
	tok := b.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		giveUp()
		last := "none"
		if p := b.lastConnErr.Load(); p != nil {
			last = (*p).Error()
		}
		return nil, fmt.Errorf("mqttbus: connect %v: %w (last error: %s)", redactBrokers(o.Brokers), ctx.Err(), last)
	}
	if err := tok.Error(); err != nil {
		giveUp()
		return nil, fmt.Errorf("mqttbus: connect: %w", err)
	}
	b.wg.Add(3)
	go b.run()
	go b.waitTokens()
	go b.dispatch()
	b.log.Info("connected", "client_id", o.ClientID)
	if o.Self != nil {
		self := *o.Self
		self.State, self.Since = bridge.Online, time.Now()
		if err := b.announce(ctx, self); err != nil {
			b.log.Warn("own status not published; retrying after reconnect", "err", err)
		}
	}
	return b, nil
}

// onConnect runs (in a paho goroutine) after every successful connect.
func (b *Bus) onConnect(mqtt.Client) {
	if b.everConnected.Swap(true) {
		b.m.Reconnects.Add(1)
		b.log.Info("reconnected")
		b.repub.Store(true)
	}
	b.resub.Store(true)
	b.poke()
}

// onDial runs synchronously when paho has a new socket, before that
// connection is usable and before paho re-sends the stored messages on
// it: new batches wait from here on, until release finds every earlier
// message acknowledged. Holding only from onConnectionLost (which paho
// runs in a goroutine of its own) left a window in which a batch went
// out on the new connection ahead of the re-send of older messages; once
// acknowledged there it was not re-sent, and the older re-sent value
// became the last one on its topic.
func (b *Bus) onDial() {
	b.mu.Lock()
	b.holding.Store(true)
	b.mu.Unlock()
	b.poke()
}

// onNotification keeps the reason of failed connection attempts for the
// error New returns when it gives up.
func (b *Bus) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	var err error
	switch n := n.(type) {
	case mqtt.ConnectionNotificationFailed:
		err = n.Reason
	case mqtt.ConnectionNotificationBrokerFailed:
		err = n.Reason
	}
	if err != nil {
		b.lastConnErr.Store(&err)
		b.log.Debug("connection attempt failed", "err", err)
	}
}

// onConnectionLost runs (in a paho goroutine) when the connection drops.
func (b *Bus) onConnectionLost(_ mqtt.Client, err error) {
	b.mu.Lock()
	b.holding.Store(true)
	closing := b.closing
	b.mu.Unlock()
	if !closing {
		b.log.Warn("connection lost", "err", err)
	}
}

// onResume runs synchronously when paho starts re-sending the stored
// messages on a new connection: new batches wait until that is done.
func (b *Bus) onResume(n int) {
	b.mu.Lock()
	b.holding.Store(true)
	b.mu.Unlock()
	b.m.Retried.Add(uint64(n))
	b.poke()
}

// onStray receives messages matching no command route (for example
// commands queued in the session for a route no longer subscribed).
func (b *Bus) onStray(_ mqtt.Client, m mqtt.Message) {
	b.m.CommandsDropped.Add(1)
	b.log.Warn("message on an unsubscribed topic dropped", "topic", m.Topic())
}

func (b *Bus) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Ready implements bridge.Health.
func (b *Bus) Ready() error {
	b.mu.Lock()
	closing, cmdErr := b.closing, b.cmdErr
	var oldest time.Time
	if len(b.pending) > 0 {
		oldest = b.pending[0].since
	}
	b.mu.Unlock()
	switch {
	case closing:
		return fmt.Errorf("mqttbus: %w", bridge.ErrClosed)
	case !b.c.IsConnectionOpen():
		return fmt.Errorf("mqttbus: %w", bridge.ErrNotConnected)
	case cmdErr != nil:
		return fmt.Errorf("mqttbus: %w: command routes not subscribed: %w", bridge.ErrNotConnected, cmdErr)
	}
	if err := buskit.StallError(oldest, b.o.StallTimeout, time.Now(), bridge.ErrStalled); err != nil {
		return fmt.Errorf("mqttbus: %w", err)
	}
	return nil
}

// Close implements bridge.Bus. A second call waits for the first.
func (b *Bus) Close(ctx context.Context) error {
	return b.closer.Do(ctx, "mqttbus", func() error { return b.close(ctx) })
}

func (b *Bus) close(ctx context.Context) error {
	var errs []error
	b.mu.Lock()
	b.closing = true
	close(b.closeCh)
	drained := make(chan struct{})
	b.drained = drained
	b.checkDrainedLocked()
	b.mu.Unlock()

	if err := buskit.AwaitDrained(ctx, drained, b.unconfirmed, "mqttbus"); err != nil {
		errs = append(errs, err)
	}
	if b.o.Self != nil && ctx.Err() == nil {
		self := *b.o.Self
		self.State, self.Since = bridge.Offline, time.Now()
		if err := b.announce(ctx, self); err != nil {
			errs = append(errs, fmt.Errorf("mqttbus: close: own status: %w", err))
		}
	}
	if ctx.Err() == nil {
		// Commands must not queue up in the session while the bridge is
		// gone: they would be carried out, stale, at the next start.
		if err := b.cmd.unsubscribeAll(ctx, b); err != nil {
			errs = append(errs, err)
		}
	}
	b.c.Disconnect(250)
	b.conns.closeAll() // ends a connection attempt paho may still run
	close(b.stopCh)
	b.wg.Wait()

	b.mu.Lock()
	rest := b.pending
	b.pending, b.held = nil, nil
	b.mu.Unlock()
	b.store.drop()
	for _, bt := range rest {
		if !bt.done {
			bt.done = true
			b.finish(bt, fmt.Errorf("mqttbus: batch of %d messages not confirmed: %w", len(bt.msgs), bridge.ErrClosed))
		}
	}
	return errors.Join(errs...)
}

// unconfirmed returns the number of batches not yet confirmed.
func (b *Bus) unconfirmed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// checkDrainedLocked closes drained when closing and nothing is pending.
func (b *Bus) checkDrainedLocked() {
	if b.drained != nil && len(b.pending) == 0 {
		close(b.drained)
		b.drained = nil
	}
}

// run is the worker: it sends held batches once the re-send after a
// reconnect is acknowledged, subscribes the command routes again, and
// sends presence again.
func (b *Bus) run() {
	defer b.wg.Done()
	for {
		select {
		case <-b.wake:
		case <-b.stopCh:
			return
		}
		if b.resub.Swap(false) {
			b.resubscribe()
		}
		if b.repub.Swap(false) {
			b.republish()
		}
		b.release()
	}
}

// retryLater wakes the worker again after d.
func (b *Bus) retryLater(d time.Duration) {
	time.AfterFunc(d, b.poke)
}
