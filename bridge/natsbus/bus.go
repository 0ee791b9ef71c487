// Package natsbus is the NATS bus adapter of the bridge, built on nats.go.
//
// In core mode a batch is confirmed by a PING/PONG round trip on the same
// connection after its last message, shared by every batch written before
// the PING. In JetStream mode every message is published asynchronously
// into a stream with its MsgID as Nats-Msg-Id and confirmed by its PubAck;
// the stream's duplicate window drops copies re-sent after a reconnect.
//
// Unconfirmed messages stay in a bounded in-flight window. When a
// confirmation fails (the connection dropped, a PubAck timed out), new
// publishes wait while everything unconfirmed is sent again in the original
// order, so a value is never overtaken by an older one it replaced.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/internal/buskit"
)

// Bus is a NATS bus adapter; it implements bridge.Bus. Create it with New
// and end it with Close.
type Bus struct {
	o       Options
	log     *slog.Logger
	m       bridge.BusMetrics
	nc      *nats.Conn
	js      jetstream.JetStream // nil in core mode
	kv      jetstream.KeyValue  // nil in core mode
	pubOpts []jetstream.PublishOpt
	capture captureCache // JetStream: which subjects the stream captures
	win     *buskit.Window

	// Worker-only: spacing of recoveries that follow each other closely.
	lastRecovered  time.Time
	recoverBackoff time.Duration

	base       context.Context // ends when Close gives up waiting
	cancelBase context.CancelFunc

	// wmu serialises writes of data messages, so that the order of
	// pending is the order on the wire.
	wmu sync.Mutex

	mu         sync.Mutex
	closing    bool
	recovering bool
	pending    []*batch            // unconfirmed batches in write order
	recs       map[*nats.Msg]*slot // JetStream: the live attempt of each unacked message
	drained    chan struct{}       // closed when closing and pending is empty

	wake      chan struct{} // cap 1: work for the worker
	connected chan struct{} // cap 1: the connection came (back) up
	closeCh   chan struct{} // closed when Close begins
	stopCh    chan struct{} // closed when the goroutines must end
	ncClosed  chan struct{} // closed by nats.go's closed callback
	closer    buskit.Once
	wg        sync.WaitGroup

	repub    atomic.Bool         // presence must be sent again
	presence buskit.PresenceBook // latest presence per route, sent in order

	cmd commands
}

var _ bridge.Bus = (*Bus)(nil)

// New connects to NATS, waiting for the first connection until ctx is
// done, and in JetStream mode creates the stream and the presence bucket
// when they are absent. Later disconnects are repaired by nats.go without
// limit until Close.
func New(ctx context.Context, o Options) (*Bus, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	tlsCfg, err := buskit.TLSConfig(o.TLS, o.TLSCAFile, o.TLSCertFile, o.TLSKeyFile, "")
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	b := &Bus{
		o:          o,
		log:        o.Logger.With("bus", "nats"),
		m:          o.Metrics,
		win:        buskit.NewWindow(o.MaxInFlight),
		base:       base,
		cancelBase: cancel,
		recs:       make(map[*nats.Msg]*slot),
		wake:       make(chan struct{}, 1),
		connected:  make(chan struct{}, 1),
		closeCh:    make(chan struct{}),
		stopCh:     make(chan struct{}),
		ncClosed:   make(chan struct{}),
	}
	b.cmd.init(o.CommandQueue)

	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
		nats.ReconnectBufSize(-1), // the in-flight window is the reconnect buffer
		nats.PingInterval(o.PingInterval),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { b.signalConnected() }),
		nats.ReconnectHandler(b.onReconnect),
		nats.DisconnectErrHandler(b.onDisconnect),
		nats.ClosedHandler(func(*nats.Conn) { close(b.ncClosed) }),
		nats.ErrorHandler(b.onAsyncError),
	}
	if o.Name != "" {
		opts = append(opts, nats.Name(o.Name))
	}
	switch {
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("natsbus: nkey seed file %q: %w", o.NKeySeedFile, err)
		}
		opts = append(opts, opt)
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if tlsCfg != nil {
		opts = append(opts, nats.Secure(tlsCfg))
	}
	nc, err := nats.Connect(strings.Join(o.URLs, ","), opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("natsbus: connect %v: %w", redactURLs(o.URLs), err)
	}
	b.nc = nc
	fail := func(err error) (*Bus, error) {
		nc.Close()
		b.awaitNATSClosed()
		cancel()
		return nil, err
	}
	for !nc.IsConnected() {
		select {
		case <-b.connected:
		case <-ctx.Done():
			return fail(fmt.Errorf("natsbus: connect %v: %w (last error: %v)", redactURLs(o.URLs), ctx.Err(), nc.LastError()))
		}
	}
	if o.JetStream != nil {
		if err := b.setupJetStream(ctx); err != nil {
			return fail(err)
		}
	}
	b.wg.Add(2)
	go b.run()
	go b.dispatch()
	if b.kv != nil && o.JetStream.PresenceTTL > 0 {
		b.wg.Go(b.refreshPresence)
	}
	b.log.Info("connected", "server", nc.ConnectedUrlRedacted(), "jetstream", o.JetStream != nil)
	if o.Self != nil {
		self := *o.Self
		self.State, self.Since = bridge.Online, time.Now()
		if err := b.PublishPresence(ctx, self); err != nil {
			b.log.Warn("own status not published; retrying after reconnect", "err", err)
		}
	}
	return b, nil
}

// setupJetStream binds the stream and the presence bucket, creating them
// when absent.
func (b *Bus) setupJetStream(ctx context.Context) error {
	o := b.o.JetStream
	js, err := jetstream.New(b.nc,
		jetstream.WithPublishAsyncMaxPending(b.o.MaxInFlight+1),
		jetstream.WithPublishAsyncTimeout(b.o.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(b.onAck),
		jetstream.WithPublishAsyncErrHandler(b.onAckErr),
	)
	if err != nil {
		return fmt.Errorf("natsbus: jetstream: %w", err)
	}
	b.js = js
	// No internal retries: a no-responders answer comes back to us so that
	// the re-send keeps the original order.
	b.pubOpts = []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)}
	storage := jetstream.FileStorage
	if o.Memory {
		storage = jetstream.MemoryStorage
	}
	cfg := jetstream.StreamConfig{
		Name:       o.Stream,
		Subjects:   o.Subjects,
		Duplicates: o.Duplicates,
		Storage:    storage,
		Replicas:   o.Replicas,
		MaxAge:     o.MaxAge,
		MaxBytes:   o.MaxBytes,
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = -1
	}
	s, err := js.Stream(ctx, o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, o.Stream)
		}
		if err == nil {
			b.log.Info("stream created", "stream", o.Stream, "subjects", o.Subjects)
		}
	}
	if err != nil {
		return fmt.Errorf("natsbus: stream %q: %w", o.Stream, err)
	}
	info := s.CachedInfo()
	if info.Config.Duplicates <= 0 {
		return fmt.Errorf("natsbus: stream %q: duplicate window is %s: re-sent messages would be stored twice", o.Stream, info.Config.Duplicates)
	}
	b.capture.set(info.Config.Subjects)
	kv, err := b.presenceBucket(ctx, js, jetstream.KeyValueConfig{Bucket: o.PresenceBucket, History: 1, Storage: storage, Replicas: o.Replicas})
	if err != nil {
		return fmt.Errorf("natsbus: presence bucket %q: %w", o.PresenceBucket, err)
	}
	b.kv = kv
	return nil
}

// presenceBucket binds the presence bucket, creating it when absent; with
// a PresenceTTL its entries expire unless written again, and a bucket with
// another TTL is updated.
func (b *Bus) presenceBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	ttl := max(b.o.JetStream.PresenceTTL, 0)
	cfg.TTL, cfg.LimitMarkerTTL = ttl, ttl
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
			// A server before 2.11: entries still expire, watchers just
			// see no marker.
			cfg.LimitMarkerTTL = 0
			kv, err = js.CreateKeyValue(ctx, cfg)
		}
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.TTL() != ttl || (st.LimitMarkerTTL() != ttl && cfg.LimitMarkerTTL != 0) {
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			// Keep what cannot or need not change.
			old := bs.StreamInfo().Config
			cfg.History, cfg.Storage, cfg.Replicas = uint8(min(max(old.MaxMsgsPerSubject, 1), 64)), old.Storage, old.Replicas
		}
		kv, err = js.UpdateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
			cfg.LimitMarkerTTL = 0
			kv, err = js.UpdateKeyValue(ctx, cfg)
		}
		if err != nil {
			return nil, fmt.Errorf("setting the TTL to %s: %w", ttl, err)
		}
		b.log.Info("presence bucket TTL set", "bucket", cfg.Bucket, "ttl", ttl, "was", st.TTL())
	}
	return kv, nil
}

// signalConnected wakes whoever waits for the connection.
func (b *Bus) signalConnected() {
	select {
	case b.connected <- struct{}{}:
	default:
	}
}

// poke wakes the worker.
func (b *Bus) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Bus) onReconnect(nc *nats.Conn) {
	b.m.Reconnects.Add(1)
	b.log.Info("reconnected", "server", nc.ConnectedUrlRedacted())
	b.repub.Store(true)
	b.signalConnected()
	b.poke()
}

func (b *Bus) onDisconnect(_ *nats.Conn, err error) {
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		b.log.Debug("disconnected", "err", err)
		return
	}
	b.log.Warn("disconnected", "err", err)
}

func (b *Bus) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if sub != nil {
		b.log.Warn("subscription error", "subject", sub.Subject, "err", err)
		return
	}
	b.log.Warn("connection error", "err", err)
}

// Ready implements bridge.Health.
func (b *Bus) Ready() error {
	b.mu.Lock()
	closing := b.closing
	var oldest time.Time
	if len(b.pending) > 0 {
		oldest = b.pending[0].since
	}
	b.mu.Unlock()
	if closing {
		return fmt.Errorf("natsbus: %w", bridge.ErrClosed)
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("natsbus: %w (connection %s)", bridge.ErrNotConnected, b.nc.Status())
	}
	if err := buskit.StallError(oldest, b.o.StallTimeout, time.Now(), bridge.ErrStalled); err != nil {
		return fmt.Errorf("natsbus: %w", err)
	}
	return nil
}

// Close implements bridge.Bus. A second call waits for the first.
func (b *Bus) Close(ctx context.Context) error {
	return b.closer.Do(ctx, "natsbus", func() error { return b.close(ctx) })
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

	if err := buskit.AwaitDrained(ctx, drained, b.unconfirmed, "natsbus"); err != nil {
		errs = append(errs, err)
	}
	if b.o.Self != nil && ctx.Err() == nil {
		self := *b.o.Self
		self.State, self.Since = bridge.Offline, time.Now()
		if err := b.announce(ctx, self); err != nil {
			errs = append(errs, fmt.Errorf("natsbus: close: own status: %w", err))
		}
	}
	b.cmd.unsubscribeAll(b)
	b.cancelBase()
	close(b.stopCh)
	b.wg.Wait()

	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
	}
	select {
	case <-b.ncClosed:
	case <-ctx.Done():
		b.nc.Close()
		b.awaitNATSClosed()
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("natsbus: close: drain: %w", ctx.Err()))
		}
	}

	b.mu.Lock()
	rest := b.pending
	b.pending = nil
	clear(b.recs)
	b.mu.Unlock()
	for _, bt := range rest {
		if bt.done {
			continue
		}
		b.finish(bt, fmt.Errorf("natsbus: batch of %d messages not confirmed: %w", len(bt.msgs), bridge.ErrClosed))
	}
	return errors.Join(errs...)
}

// unconfirmed returns the number of batches not yet confirmed.
func (b *Bus) unconfirmed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// awaitNATSClosed waits for nats.go's closed callback after Close, so its
// goroutines are gone; nats.go always calls it, the bound is a safety net.
func (b *Bus) awaitNATSClosed() {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-b.ncClosed:
	case <-t.C:
	}
}

// checkDrainedLocked closes drained when closing and nothing is pending.
func (b *Bus) checkDrainedLocked() {
	if b.drained != nil && len(b.pending) == 0 {
		close(b.drained)
		b.drained = nil
	}
}
