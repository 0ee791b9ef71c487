package main

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rcbridge/rcbridge/bridge"
	"github.com/rcbridge/rcbridge/rc"
)

// Label values of the metrics, space-separated. Labels are low-cardinality
// only: outcomes, states and kinds, never servers, nodes, subjects or
// topics (the per-server figures are in /api/v1/servers).
const (
	admissionOutcomes = "accepted rejected malformed timed_out evicted dropped"
	commandOutcomes   = "ok bad_status refused rate_limited busy unrouted duplicate"
	dropKinds         = "data commands refusals"
	resumeOutcomes    = "resumed recreated failed"
	resumeEnds        = "online offline"
	clientEventKinds  = "active disconnected stalled resuming resumed resume_failed gap transferred recreated closed"
)

// metrics are the daemon's Prometheus metrics (see README, "Metrics and
// HTTP endpoints"). The listener's observer feeds the admissions, the
// registry the sessions gauge, the bus adapter and the bridge the rest
// through their hooks (busMetrics, bridgeMetrics).
type metrics struct {
	reg *prometheus.Registry

	admissions *prometheus.CounterVec // outcome
	// sessions counts OPC UA sessions set up, setupFailures the setups
	// that failed; resumes counts moves onto a new connection by outcome.
	sessions, setupFailures prometheus.Counter
	resumes                 *prometheus.CounterVec // outcome
	// notifications counts NotificationMessages received from servers,
	// acknowledged those acknowledged after the bus confirmed them,
	// duplicates those received again after a resume (not published
	// twice), gaps the gap events.
	notifications, acknowledged, duplicates, gaps prometheus.Counter
	// published … lost count bus messages (data, presence, replies).
	published, confirmed, retried, failed, lost prometheus.Counter
	busReconnects                               prometheus.Counter
	drops                                       *prometheus.CounterVec // kind
	commands                                    *prometheus.CounterVec // outcome
	// clientEvents counts the OPC UA clients' state changes and
	// subscription events (rc.ClientEvent).
	clientEvents *prometheus.CounterVec // event
	// resume observes how long a server stayed "resuming": from its
	// connection drop until it was online again or given up.
	resume *prometheus.HistogramVec // end: online, offline
}

func newMetrics(version string, sessions func() map[string]int) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "rcbridge", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	vec := func(name, help, label string, values string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rcbridge", Name: name, Help: help}, []string{label})
		for _, v := range strings.Fields(values) {
			c.WithLabelValues(v) // every series exists from the start, at 0
		}
		reg.MustRegister(c)
		return c
	}
	m := &metrics{
		reg:           reg,
		admissions:    vec("admissions_total", "Reverse connections by admission outcome.", "outcome", admissionOutcomes),
		sessions:      counter("sessions_total", "OPC UA sessions set up."),
		setupFailures: counter("session_setup_failures_total", "OPC UA session setups that failed after the connection was admitted."),
		resumes:       vec("resumes_total", "Sessions moved onto a server's next connection: resumed (same session), recreated (the server had lost it), failed.", "outcome", resumeOutcomes),
		notifications: counter("notifications_total", "NotificationMessages received from OPC UA servers."),
		acknowledged:  counter("acknowledged_notifications_total", "NotificationMessages acknowledged to OPC UA servers, each only after the bus confirmed all of it."),
		duplicates:    counter("duplicate_notifications_total", "NotificationMessages received again after a resume: acknowledged, not published twice."),
		gaps:          counter("gaps_total", "Gap events: data a server could no longer deliver."),
		published:     counter("bus_published_messages_total", "Messages written to the bus, re-sends included."),
		confirmed:     counter("bus_confirmed_messages_total", "Messages the bus confirmed (JetStream ack, MQTT PUBACK/PUBCOMP, core NATS flush)."),
		retried:       counter("bus_retried_messages_total", "Messages sent again after a lost confirmation."),
		failed:        counter("bus_failed_messages_total", "Messages of batches the bus adapter gave up on."),
		lost:          counter("bus_lost_messages_total", "MQTT QoS 0 messages whose write failed."),
		busReconnects: counter("bus_reconnects_total", "Reconnections to the bus."),
		drops:         vec("dropped_total", "Dropped items: data changes that could not be published, commands and refusals that found their bounded queue full.", "kind", dropKinds),
		commands:      vec("commands_total", "Commands from the bus by outcome.", "outcome", commandOutcomes),
		clientEvents: vec("client_events_total", "OPC UA client state changes and subscription events: active, disconnected, stalled, resuming, resumed, resume_failed, gap, transferred, recreated, closed.",
			"event", clientEventKinds),
		resume: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rcbridge", Name: "resume_seconds",
			Help:    "How long a server stayed resuming: from its connection drop until online again (end=online) or given up (end=offline).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"end"}),
	}
	for _, e := range strings.Fields(resumeEnds) {
		m.resume.WithLabelValues(e)
	}
	reg.MustRegister(m.resume)
	for _, s := range allStates() {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "rcbridge", Name: "sessions", Help: "Configured servers by session state.",
			ConstLabels: prometheus.Labels{"state": s},
		}, func() float64 { return float64(sessions()[s]) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "rcbridge", Name: "build_info", Help: "Always 1; the version is a label.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))
	return m
}

// observeAdmission counts an admission event by its outcome, the event
// kind's name. EventReceived precedes the outcome of every decoded
// ReverseHello and is not counted.
func (m *metrics) observeAdmission(e rc.Event) {
	outcome := strings.ReplaceAll(e.Kind.String(), "-", "_") // timed-out → timed_out
	if slices.Contains(strings.Fields(admissionOutcomes), outcome) {
		m.admissions.WithLabelValues(outcome).Inc()
	}
}

// observeClientEvent counts an OPC UA client's event by its kind's name.
// It is an rc.ClientConfig.OnClientEvent and returns at once.
func (m *metrics) observeClientEvent(ev rc.ClientEvent) {
	kind := strings.ReplaceAll(ev.Kind.String(), "-", "_") // resume-failed → resume_failed
	if slices.Contains(strings.Fields(clientEventKinds), kind) {
		m.clientEvents.WithLabelValues(kind).Inc()
	}
}

// add returns a bridge.Counter adding to the counters cs.
func add(cs ...prometheus.Counter) bridge.Counter {
	return func(n uint64) {
		for _, c := range cs {
			c.Add(float64(n))
		}
	}
}

// busMetrics are the bus adapter's hooks.
func (m *metrics) busMetrics() bridge.BusMetrics {
	return bridge.BusMetrics{
		Published:       add(m.published),
		Confirmed:       add(m.confirmed),
		Retried:         add(m.retried),
		Failed:          add(m.failed),
		Lost:            add(m.lost),
		Reconnects:      add(m.busReconnects),
		CommandsDropped: add(m.drops.WithLabelValues("commands")),
	}
}

// bridgeMetrics are the bridge's hooks: the counters without server
// labels, and per server into the registry (traffic totals and rates,
// state, resume durations).
func (m *metrics) bridgeMetrics(reg *registry, now func() time.Time) bridge.Metrics {
	var mu sync.Mutex
	resumingSince := make(map[string]time.Time) // by server key
	return bridge.Metrics{
		Server: func(key string) bridge.ServerMetrics {
			uri := reg.uriOf(key)
			return bridge.ServerMetrics{
				Sessions:        add(m.sessions),
				SetupFailures:   add(m.setupFailures),
				Resumes:         add(m.resumes.WithLabelValues("resumed")),
				Recreated:       add(m.resumes.WithLabelValues("recreated")),
				ResumeFailures:  add(m.resumes.WithLabelValues("failed")),
				Notifications:   func(n uint64) { m.notifications.Add(float64(n)); reg.addNotifications(uri, n) },
				Acknowledged:    add(m.acknowledged),
				Duplicates:      add(m.duplicates),
				Published:       func(n uint64) { reg.addPublished(uri, n) },
				Dropped:         add(m.drops.WithLabelValues("data")),
				Gaps:            add(m.gaps),
				Commands:        add(m.commands.WithLabelValues("ok")),
				CommandsBad:     add(m.commands.WithLabelValues("bad_status")),
				CommandsRefused: add(m.commands.WithLabelValues("refused")),
				CommandsLimited: add(m.commands.WithLabelValues("rate_limited")),
				CommandsBusy:    add(m.commands.WithLabelValues("busy")),
			}
		},
		State: func(key string, st bridge.PresenceState) {
			t := now()
			reg.setState(reg.uriOf(key), st.String())
			mu.Lock()
			defer mu.Unlock()
			began, resuming := resumingSince[key]
			switch {
			case st == bridge.Resuming:
				resumingSince[key] = t
			case resuming:
				delete(resumingSince, key)
				m.resume.WithLabelValues(st.String()).Observe(t.Sub(began).Seconds())
			}
		},
		Problem:           func(key string, err error) { reg.setError(reg.uriOf(key), err) },
		CommandsUnrouted:  add(m.commands.WithLabelValues("unrouted")),
		RejectsDropped:    add(m.drops.WithLabelValues("refusals")),
		CommandsDuplicate: add(m.commands.WithLabelValues("duplicate")),
	}
}
