//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/bridge/bustest"
	"github.com/rcbridge/rcbridge/bridge/mqttbus"
)

// mosquitto is Debian's broker, started by the test on a free 127.0.0.1
// port with persistence in a temporary directory and stopped by PID.
type mosquitto struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
}

func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatalf("mosquitto not installed (apt-get install -y mosquitto): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	m := &mosquitto{t: t, dir: t.TempDir(), port: port}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// "user": started as root, mosquitto would switch to the mosquitto
	// account and could not write its persistence file into our directory.
	conf := fmt.Sprintf(`user %s
listener %d 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
persistence true
persistence_location %s/
autosave_interval 0
max_queued_messages 0
max_inflight_messages 0
log_dest file %s/mosquitto.log
log_type error
log_type warning
log_type notice
`, me.Username, port, m.dir, m.dir)
	if err := os.WriteFile(filepath.Join(m.dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start(bin)
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) start(bin string) {
	m.t.Helper()
	m.cmd = exec.Command(bin, "-c", filepath.Join(m.dir, "mosquitto.conf"))
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan<- error) { done <- cmd.Wait() }(m.cmd, m.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.addr(), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case err := <-m.done:
			log, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
			m.t.Fatalf("mosquitto exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto not listening on %s", m.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the broker by its PID: SIGTERM (it saves its persistence
// file), then SIGKILL if it does not exit.
func (m *mosquitto) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

func (m *mosquitto) restart(whileDown func()) {
	bin := m.cmd.Path
	m.stop()
	if whileDown != nil {
		whileDown()
	}
	m.start(bin)
}

func (m *mosquitto) addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }
func (m *mosquitto) url() string  { return "tcp://" + m.addr() }

// client connects a test-side paho client that reconnects by itself.
func client(t *testing.T, url, id string, persistent bool) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(!persistent).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond)
	c := mqtt.NewClient(opts)
	if !c.Connect().WaitTimeout(10*time.Second) || !c.IsConnectionOpen() {
		t.Fatalf("client %s: no connection to %s", id, url)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func await(t *testing.T, tok mqtt.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: %v", what, tok.Error())
	}
}

// TestMosquittoConformance runs the bus conformance suite through mqttbus
// against a real mosquitto at QoS 1 and QoS 0.
func TestMosquittoConformance(t *testing.T) {
	for _, qos := range []bridge.QoS{bridge.AtLeastOnce, bridge.AtMostOnce} {
		t.Run(fmt.Sprintf("QoS%d", qos), func(t *testing.T) {
			bustest.Run(t, mosquittoHarness(t, qos))
		})
	}
}

func mosquittoHarness(t *testing.T, qos bridge.QoS) bustest.Harness {
	m := startMosquitto(t)
	var seq atomic.Int64
	id := func(role string) string {
		return fmt.Sprintf("%s-%d-%d", role, time.Now().UnixNano()%1e9, seq.Add(1))
	}
	requester := client(t, m.url(), id("requester"), false)
	return bustest.Harness{
		Sep:             "/",
		QoS:             qos,
		LosslessRestart: qos > bridge.AtMostOnce,
		Open: func(t *testing.T, c bustest.Config) bridge.Bus {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			bus, err := mqttbus.New(ctx, mqttbus.Options{
				Brokers: []string{m.url()}, ClientID: id("bridge"),
				MaxInFlight: c.MaxInFlight, CommandQueue: c.CommandQueue, Metrics: c.Metrics, Self: c.Self,
				MaxReconnectInterval: 500 * time.Millisecond,
			})
			if err != nil {
				t.Fatalf("mqttbus.New: %v", err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = bus.Close(ctx)
			})
			return bus
		},
		// The watcher has a persistent session: mosquitto keeps its
		// subscription and queues what it misses across a restart.
		Watch: func(t *testing.T, prefix string) *bustest.Recorder {
			rec := bustest.NewRecorder()
			c := client(t, m.url(), id("watcher"), true)
			await(t, c.Subscribe(prefix+"/#", 1, func(_ mqtt.Client, msg mqtt.Message) { rec.Add(msg.Topic(), msg.Payload()) }), "watch")
			return rec
		},
		Stall: func(t *testing.T, prefix string) {
			block := make(chan struct{})
			c := client(t, m.url(), id("stalled"), false)
			await(t, c.Subscribe(prefix+"/#", 1, func(mqtt.Client, mqtt.Message) { <-block }), "stall")
			t.Cleanup(func() { close(block) })
		},
		Command: func(ctx context.Context, t *testing.T, route string, payload []byte) ([]byte, error) {
			if !requester.IsConnectionOpen() {
				return nil, errors.New("requester not connected")
			}
			got := make(chan []byte, 1)
			tok := requester.Subscribe(route+"/result", 1, func(_ mqtt.Client, msg mqtt.Message) {
				select {
				case got <- msg.Payload():
				default:
				}
			})
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				return nil, fmt.Errorf("subscribe result: %v", tok.Error())
			}
			defer func() { requester.Unsubscribe(route + "/result").WaitTimeout(5 * time.Second) }()
			if p := requester.Publish(route, 1, false, payload); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
				return nil, fmt.Errorf("publish command: %v", p.Error())
			}
			select {
			case r := <-got:
				return r, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		Notify: func(t *testing.T, route string, payload []byte) {
			await(t, requester.Publish(route, 1, false, payload), "notify")
		},
		RestartBroker: func(t *testing.T, whileDown func()) { m.restart(whileDown) },
		ReadPresence: func(ctx context.Context, t *testing.T, p bridge.Presence) []byte {
			c := client(t, m.url(), id("reader"), false)
			defer c.Disconnect(0)
			got := make(chan []byte, 1)
			tok := c.Subscribe(p.Route, 1, func(_ mqtt.Client, msg mqtt.Message) {
				if msg.Retained() {
					select {
					case got <- msg.Payload():
					default:
					}
				}
			})
			if !tok.WaitTimeout(5 * time.Second) {
				return nil
			}
			select {
			case r := <-got:
				return r
			case <-time.After(300 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return nil
			}
		},
	}
}
