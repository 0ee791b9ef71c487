//go:build integration

package integration

import (
	"bytes"
	"context"
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
	"github.com/rcbridge/rcbridge/bridge/mqttbus/mqtttest"
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
	requester := mqtttest.Dial(t, m.url(), id("requester"), false)
	return bustest.Harness{
		Sep:                "/",
		QoS:                qos,
		LosslessRestart:    qos > bridge.AtMostOnce,
		DropsCountedAtOnce: true,
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
			c := mqtttest.Dial(t, m.url(), id("watcher"), true)
			mqtttest.Wait(t, c.Subscribe(prefix+"/#", 1, func(_ mqtt.Client, msg mqtt.Message) { rec.Add(msg.Topic(), msg.Payload()) }), "watch")
			return rec
		},
		Stall: func(t *testing.T, prefix string) {
			block := make(chan struct{})
			c := mqtttest.Dial(t, m.url(), id("stalled"), false)
			mqtttest.Wait(t, c.Subscribe(prefix+"/#", 1, func(mqtt.Client, mqtt.Message) { <-block }), "stall")
			t.Cleanup(func() { close(block) })
		},
		Command: func(ctx context.Context, t *testing.T, route string, payload []byte) ([]byte, error) {
			return mqtttest.Command(ctx, requester, route, payload, func(r []byte) bool {
				return bytes.HasSuffix(r, append([]byte("|"), payload...))
			})
		},
		Notify: func(t *testing.T, route string, payload []byte) {
			mqtttest.Wait(t, requester.Publish(route, 1, false, payload), "notify")
		},
		RestartBroker: func(t *testing.T, whileDown func()) { m.restart(whileDown) },
		ReadPresence: func(ctx context.Context, t *testing.T, p bridge.Presence) []byte {
			return mqtttest.Retained(ctx, t, m.url(), p.Route)
		},
	}
}
