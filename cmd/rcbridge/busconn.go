package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/rcbridge/rcbridge/cmd/internal/config"
)

// errBusDown means the plain bus client has no connection right now.
var errBusDown = errors.New("bus not connected")

// busMessage is one message seen by busClient.Subscribe.
type busMessage struct {
	Route    string
	Payload  []byte
	Retained bool
}

// busClient is a plain client connection to the configured bus (NATS,
// embedded NATS or MQTT). rcbridge tail and request use it; the daemon
// watches the bus with it for /readyz until the bridge's bus adapter is
// wired in.
type busClient interface {
	// Subscribe delivers messages matching filter (a NATS subject or an MQTT
	// topic filter, wildcards allowed) to h, one at a time.
	Subscribe(filter string, h func(busMessage)) error
	// Request sends a command and waits for its reply: NATS request/reply,
	// or on MQTT a publish on route answered on "<route>/result" by a
	// message carrying the same "id" (one is added when missing).
	Request(ctx context.Context, route string, payload []byte) ([]byte, error)
	// Ready returns nil while connected.
	Ready() error
	// Close drains (NATS) or disconnects (MQTT) within ctx.
	Close(ctx context.Context) error
}

// dialBus connects to the bus of b as client name. With retry, the first
// connection is attempted in the background (as the daemon needs: the bus
// may come up later); without it, an unreachable bus is an error.
func dialBus(b config.Bus, name string, retry bool, lookupEnv func(string) (string, bool), log *slog.Logger) (busClient, error) {
	if b.Kind == config.BusMQTT {
		return dialMQTT(b.MQTT, name, retry, lookupEnv, log)
	}
	return dialNATS(b, name, retry, lookupEnv, log)
}

// tlsConfig builds the TLS client configuration of t, nil when TLS is off.
// Certificate verification is always on.
func tlsConfig(t config.TLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca %q: no PEM certificate in it", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(t.Certificate, t.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("tls.certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// natsURLs returns the server URLs of a NATS or embedded bus. An embedded
// server listening on all interfaces is reached on loopback.
func natsURLs(b config.Bus) string {
	if b.Kind != config.BusEmbedded {
		return strings.Join(b.NATS.URLs, ",")
	}
	host, port, err := net.SplitHostPort(b.Embedded.Address)
	if err != nil {
		return "nats://" + b.Embedded.Address
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, port)
}

// natsOptions returns the connection options of b: name, auth, TLS,
// timeouts. The embedded server needs none of the auth or TLS settings.
func natsOptions(b config.Bus, name string, lookupEnv func(string) (string, bool)) ([]nats.Option, error) {
	n := b.NATS
	opts := []nats.Option{nats.Name(name), nats.Timeout(n.ConnectTimeout.D()), nats.ReconnectBufSize(n.ReconnectBufferSize)}
	if b.Kind == config.BusEmbedded {
		return opts, nil
	}
	tc, err := tlsConfig(n.TLS)
	if err != nil {
		return nil, fmt.Errorf("bus.nats.%w", err)
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	switch {
	case n.User != "":
		pw, err := n.PasswordRef().Load(lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("bus.nats.password: %w", err)
		}
		opts = append(opts, nats.UserInfo(n.User, pw.Value()))
	case n.TokenRef().IsSet():
		tok, err := n.TokenRef().Load(lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("bus.nats.token: %w", err)
		}
		opts = append(opts, nats.Token(tok.Value()))
	case n.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("bus.nats.nkey_seed_file: %w", err)
		}
		opts = append(opts, o)
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	return opts, nil
}

type natsClient struct {
	nc *nats.Conn
}

func dialNATS(b config.Bus, name string, retry bool, lookupEnv func(string) (string, bool), log *slog.Logger) (*natsClient, error) {
	opts, err := natsOptions(b, name, lookupEnv)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		nats.RetryOnFailedConnect(retry),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("bus disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("bus reconnected", "url", nc.ConnectedUrlRedacted()) }),
	)
	urls := natsURLs(b)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("NATS %s: %w", urls, err)
	}
	return &natsClient{nc: nc}, nil
}

func (c *natsClient) Subscribe(filter string, h func(busMessage)) error {
	_, err := c.nc.Subscribe(filter, func(m *nats.Msg) { h(busMessage{Route: m.Subject, Payload: m.Data}) })
	if err == nil {
		err = c.nc.Flush()
	}
	if err != nil {
		return fmt.Errorf("subscribing to %q: %w", filter, err)
	}
	return nil
}

func (c *natsClient) Request(ctx context.Context, route string, payload []byte) ([]byte, error) {
	m, err := c.nc.RequestWithContext(ctx, route, payload)
	if err != nil {
		return nil, fmt.Errorf("request on %q: %w", route, err)
	}
	return m.Data, nil
}

func (c *natsClient) Ready() error {
	if !c.nc.IsConnected() {
		return fmt.Errorf("%w (NATS %s)", errBusDown, c.nc.Status())
	}
	return nil
}

// Close drains the connection: subscriptions finish their pending
// messages and buffered publishes are flushed.
func (c *natsClient) Close(ctx context.Context) error {
	closed := make(chan struct{})
	c.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := c.nc.Drain(); err != nil {
		c.nc.Close()
		return nil // not connected: nothing to drain
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		c.nc.Close()
		return fmt.Errorf("draining the bus connection: %w", ctx.Err())
	}
}

type mqttClient struct {
	c mqtt.Client
}

func dialMQTT(m config.MQTT, name string, retry bool, lookupEnv func(string) (string, bool), log *slog.Logger) (*mqttClient, error) {
	o := mqtt.NewClientOptions()
	for _, b := range m.Brokers {
		o.AddBroker(b)
	}
	// A client id of its own: sharing the bridge's would end its session.
	o.SetClientID(m.ClientID + "-" + name + "-" + randomID())
	o.SetCleanSession(true)
	o.SetKeepAlive(m.KeepAlive.D())
	o.SetConnectTimeout(m.ConnectTimeout.D())
	o.SetAutoReconnect(true)
	o.SetConnectRetry(retry)
	o.SetOrderMatters(false)
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { log.Warn("bus disconnected", "err", err) })
	if m.Username != "" {
		o.SetUsername(m.Username)
		if m.PasswordRef().IsSet() {
			pw, err := m.PasswordRef().Load(lookupEnv)
			if err != nil {
				return nil, fmt.Errorf("bus.mqtt.password: %w", err)
			}
			o.SetPassword(pw.Value())
		}
	}
	tc, err := tlsConfig(m.TLS)
	if err != nil {
		return nil, fmt.Errorf("bus.mqtt.%w", err)
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !retry {
		if !tok.WaitTimeout(m.ConnectTimeout.D() + time.Second) {
			c.Disconnect(0)
			return nil, fmt.Errorf("MQTT %s: connect timed out", strings.Join(m.Brokers, ","))
		}
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("MQTT %s: %w", strings.Join(m.Brokers, ","), err)
		}
	}
	return &mqttClient{c: c}, nil
}

// mqttWait waits for a paho token within ctx.
func mqttWait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *mqttClient) Subscribe(filter string, h func(busMessage)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t := c.c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		h(busMessage{Route: m.Topic(), Payload: m.Payload(), Retained: m.Retained()})
	})
	if err := mqttWait(ctx, t); err != nil {
		return fmt.Errorf("subscribing to %q: %w", filter, err)
	}
	return nil
}

func (c *mqttClient) Request(ctx context.Context, route string, payload []byte) ([]byte, error) {
	var req map[string]any
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("MQTT commands are JSON objects: %w", err)
	}
	id, _ := req["id"].(string)
	if id == "" {
		id = "rcbridge-request-" + randomID()
		req["id"] = id
		payload, _ = json.Marshal(req)
	}
	replies := make(chan []byte, 1)
	result := route + "/result"
	t := c.c.Subscribe(result, 1, func(_ mqtt.Client, m mqtt.Message) {
		var r struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Payload(), &r) == nil && r.ID == id {
			select {
			case replies <- m.Payload():
			default:
			}
		}
	})
	if err := mqttWait(ctx, t); err != nil {
		return nil, fmt.Errorf("subscribing to %q: %w", result, err)
	}
	defer c.c.Unsubscribe(result)
	if err := mqttWait(ctx, c.c.Publish(route, 1, false, payload)); err != nil {
		return nil, fmt.Errorf("publishing on %q: %w", route, err)
	}
	select {
	case r := <-replies:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no result on %q: %w", result, ctx.Err())
	}
}

func (c *mqttClient) Ready() error {
	if !c.c.IsConnectionOpen() {
		return fmt.Errorf("%w (MQTT)", errBusDown)
	}
	return nil
}

func (c *mqttClient) Close(ctx context.Context) error {
	quiesce := uint(250)
	if dl, ok := ctx.Deadline(); ok {
		quiesce = uint(max(0, min(time.Until(dl), time.Second).Milliseconds()))
	}
	c.c.Disconnect(quiesce)
	return nil
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
