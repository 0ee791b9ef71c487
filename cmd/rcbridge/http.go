package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// check is one readiness condition: nil when met.
type check struct {
	name string
	fn   func() error
}

// readyResponse is the body of /readyz.
type readyResponse struct {
	Ready bool `json:"ready"`
	// Checks maps each condition to "ok" or what is wrong.
	Checks map[string]string `json:"checks"`
}

// serversResponse is the body of /api/v1/servers.
type serversResponse struct {
	Time    time.Time    `json:"time"`
	Servers []serverView `json:"servers"`
}

// newHandler serves the daemon's HTTP endpoints:
//
//	/metrics         Prometheus text format
//	/healthz         200 "ok" while the process serves HTTP (liveness)
//	/readyz          200 when every check passes, else 503; JSON either way
//	/api/v1/servers  JSON status of every configured server
//	/debug/pprof/    Go runtime profiles, only when withPProf is set
func newHandler(m *metrics, reg *registry, checks []check, now func() time.Time, withPProf bool) http.Handler {
	mux := http.NewServeMux()
	if withPProf {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: false}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		res := readyResponse{Ready: true, Checks: make(map[string]string, len(checks))}
		for _, c := range checks {
			if err := c.fn(); err != nil {
				res.Ready = false
				res.Checks[c.name] = err.Error()
			} else {
				res.Checks[c.name] = "ok"
			}
		}
		code := http.StatusOK
		if !res.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, res)
	})
	mux.HandleFunc("GET /api/v1/servers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, serversResponse{Time: now(), Servers: reg.snapshot()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
