package main

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rcbridge/rcbridge/rc"
)

// Label values of the metrics, space-separated. Labels are low-cardinality
// only: outcomes, states and queue names, never servers, nodes, subjects or
// topics (the per-server figures are in /api/v1/servers).
const (
	admissionOutcomes = "accepted rejected malformed timed_out evicted dropped"
	commandOutcomes   = "ok bad_status invalid not_allowed offline rate_limited failed"
	dropQueues        = "notifications commands"
)

// metrics are the daemon's Prometheus metrics (see README, "Metrics and
// HTTP endpoints"). The admission counters are fed by the listener's
// observer, the sessions gauge by the server registry; the data-path
// counters are fed by the bridge and the bus adapter.
type metrics struct {
	reg *prometheus.Registry

	admissions *prometheus.CounterVec // outcome
	// notifications counts data changes received from servers.
	notifications prometheus.Counter
	// published and confirmed count bus messages written and confirmed by
	// the bus (JetStream ack, MQTT PUBACK/PUBCOMP, core NATS flush);
	// retried, failed and lost count re-sends, given-up and lost messages.
	published, confirmed, retried, failed, lost prometheus.Counter
	busReconnects                               prometheus.Counter
	// acknowledged counts NotificationMessages acknowledged to servers
	// (only after the bus confirmed them).
	acknowledged prometheus.Counter
	drops        *prometheus.CounterVec // queue
	commands     *prometheus.CounterVec // outcome
	// resume observes how long moving a session onto a new socket took.
	resume *prometheus.HistogramVec // outcome: resumed, recreated
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
		notifications: counter("notifications_total", "Data changes received from OPC UA servers."),
		published:     counter("bus_published_messages_total", "Messages written to the bus, re-sends included."),
		confirmed:     counter("bus_confirmed_messages_total", "Messages the bus confirmed (JetStream ack, MQTT PUBACK/PUBCOMP, core NATS flush)."),
		retried:       counter("bus_retried_messages_total", "Messages sent again after a lost confirmation."),
		failed:        counter("bus_failed_messages_total", "Messages of batches the bus adapter gave up on."),
		lost:          counter("bus_lost_messages_total", "MQTT QoS 0 messages whose write failed."),
		busReconnects: counter("bus_reconnects_total", "Reconnections to the bus."),
		acknowledged:  counter("acknowledged_notification_messages_total", "NotificationMessages acknowledged to OPC UA servers after the bus confirmed them."),
		drops:         vec("dropped_total", "Items dropped because a bounded queue was full.", "queue", dropQueues),
		commands:      vec("commands_total", "Commands from the bus by outcome.", "outcome", commandOutcomes),
		resume: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rcbridge", Name: "resume_seconds",
			Help:    "Time from a server's new socket to its session publishing again.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
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
