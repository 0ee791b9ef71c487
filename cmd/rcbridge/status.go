package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rcbridge/rcbridge/cmd/internal/config"
	"github.com/rcbridge/rcbridge/rc"
)

// The session states of a configured server, as in the presence messages
// (DESIGN decision 9).
const (
	stateOffline  = "offline"
	stateResuming = "resuming"
	stateOnline   = "online"
)

func allStates() []string { return []string{stateOffline, stateResuming, stateOnline} }

const (
	// rateSample is how often the registry samples its counters; rateWindow
	// is the span the rates in /api/v1/servers are averaged over.
	rateSample = 5 * time.Second
	rateWindow = time.Minute
)

// registry keeps the status of every configured server for
// /api/v1/servers and the sessions gauge. The listener's observer reports
// admissions into it; the bridge reports session states, item counts,
// errors and traffic. All methods are safe for concurrent use and never
// block for long: they are called from admission and publish paths.
type registry struct {
	now   func() time.Time
	byKey map[string]string // ServerUri by server key

	mu      sync.Mutex
	order   []string                // ServerUris in configuration order
	servers map[string]*serverEntry // by ServerUri; guarded by mu
}

type serverEntry struct {
	view    serverView
	samples []rateSampleAt // oldest first, spanning at most rateWindow
}

type rateSampleAt struct {
	at                       time.Time
	notifications, published uint64
}

// serverView is one server in /api/v1/servers.
type serverView struct {
	URI string `json:"uri"`
	Key string `json:"key"`
	// State is offline, resuming or online; Since is when it began.
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// RemoteAddress and EndpointURL are those of the server's latest
	// admitted reverse connection; LastAdmission is when it arrived.
	RemoteAddress string     `json:"remote_address"`
	EndpointURL   string     `json:"endpoint_url"`
	LastAdmission *time.Time `json:"last_admission"`
	Security      security   `json:"security"`
	// Items is the number of monitored items of the session.
	Items int   `json:"items"`
	Rates rates `json:"rates"`
	// Notifications and Published are totals since the daemon started.
	Notifications uint64 `json:"notifications"`
	Published     uint64 `json:"published"`
	// LastError is the latest problem with this server, if any.
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
}

type security struct {
	Policy string `json:"policy"`
	Mode   string `json:"mode"`
}

// rates are per second, averaged over the last minute.
type rates struct {
	Notifications float64 `json:"notifications_per_second"`
	Published     float64 `json:"published_per_second"`
}

func newRegistry(servers []config.Server, keys map[string]string, now func() time.Time) *registry {
	r := &registry{now: now, servers: make(map[string]*serverEntry, len(servers)), byKey: make(map[string]string, len(keys))}
	for uri, key := range keys {
		r.byKey[key] = uri
	}
	t := now()
	for _, s := range servers {
		r.order = append(r.order, s.URI)
		r.servers[s.URI] = &serverEntry{
			view: serverView{
				URI:      s.URI,
				Key:      keys[s.URI],
				State:    stateOffline,
				Since:    t,
				Security: security{Policy: s.SecurityPolicy.String(), Mode: s.SecurityMode.String()},
			},
			samples: []rateSampleAt{{at: t}},
		}
	}
	return r
}

// uriOf returns the ServerUri of a server key ("" if unknown).
func (r *registry) uriOf(key string) string { return r.byKey[key] }

// update runs f on the entry of uri, if it is a configured server.
func (r *registry) update(uri string, f func(e *serverEntry, now time.Time)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.servers[uri]; ok {
		f(e, r.now())
	}
}

// observe records an admission event of a configured server: where it
// connected from, or why its reverse connection was refused.
func (r *registry) observe(ev rc.Event) {
	switch ev.Kind {
	case rc.EventAccepted:
		r.update(ev.ServerURI, func(e *serverEntry, now time.Time) {
			e.view.RemoteAddress = ev.Remote.String()
			e.view.EndpointURL = ev.EndpointURL
			e.view.LastAdmission = &now
		})
	case rc.EventRejected, rc.EventDropped:
		if ev.Err != nil && !errors.Is(ev.Err, rc.ErrListenerClosed) && !errors.Is(ev.Err, rc.ErrBrokerClosed) {
			r.setError(ev.ServerURI, ev.Err)
		}
	}
}

// setState records a session state change.
func (r *registry) setState(uri, state string) {
	r.update(uri, func(e *serverEntry, now time.Time) {
		if e.view.State != state {
			e.view.State, e.view.Since = state, now
		}
	})
}

// setItems records the number of monitored items of the server's session.
func (r *registry) setItems(uri string, n int) {
	r.update(uri, func(e *serverEntry, _ time.Time) { e.view.Items = n })
}

// setError records the latest problem with a server.
func (r *registry) setError(uri string, err error) {
	r.update(uri, func(e *serverEntry, now time.Time) {
		e.view.LastError, e.view.LastErrorAt = err.Error(), &now
	})
}

// addNotifications and addPublished count a server's data changes and the
// bus messages published for it.
func (r *registry) addNotifications(uri string, n uint64) {
	r.update(uri, func(e *serverEntry, _ time.Time) { e.view.Notifications += n })
}

func (r *registry) addPublished(uri string, n uint64) {
	r.update(uri, func(e *serverEntry, _ time.Time) { e.view.Published += n })
}

// sample records the counters of every server for the rates, keeping
// rateWindow of history.
func (r *registry) sample() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, e := range r.servers {
		e.samples = append(e.samples, rateSampleAt{at: now, notifications: e.view.Notifications, published: e.view.Published})
		for len(e.samples) > 2 && now.Sub(e.samples[1].at) >= rateWindow {
			e.samples = e.samples[1:]
		}
	}
}

// run samples the rates every rateSample until ctx is done.
func (r *registry) run(ctx context.Context) error {
	t := time.NewTicker(rateSample)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.sample()
		}
	}
}

// snapshot returns every configured server, in configuration order, with
// rates over the sampled window.
func (r *registry) snapshot() []serverView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]serverView, 0, len(r.order))
	for _, uri := range r.order {
		e := r.servers[uri]
		v := e.view
		first, last := e.samples[0], e.samples[len(e.samples)-1]
		if dt := last.at.Sub(first.at).Seconds(); dt > 0 {
			v.Rates = rates{
				Notifications: float64(last.notifications-first.notifications) / dt,
				Published:     float64(last.published-first.published) / dt,
			}
		}
		out = append(out, v)
	}
	return out
}

// states counts the servers in each state.
func (r *registry) states() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, 3)
	for _, e := range r.servers {
		out[e.view.State]++
	}
	return out
}
