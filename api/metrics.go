package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where Metrics serves the metrics.
const MetricsPath = "/metrics"

// Metrics serves Prometheus metrics: Go and process collectors, the peer and
// link metrics read from a Source at scrape time, and whatever other
// packages register on Registry.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	l       listener
}

// NewMetrics validates cfg and builds the registry. It starts nothing.
func NewMetrics(cfg MetricsConfig, src Source, log *slog.Logger) (*Metrics, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("api: metrics: nil Source")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "metrics")
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newPeerCollector(src, log),
		newLinkCollector(src, log),
		newMobilityCollector(src, log),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: metrics: %w", err)
		}
	}
	// A scrape whose collection fails gets a 500, so Prometheus marks the
	// target down (up == 0) instead of silently missing series.
	h := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.HTTPErrorOnError,
		Registry:      reg,
	}))
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, h)
	m := &Metrics{reg: reg, handler: logRequests(log, mux)}
	m.l = listener{name: "metrics", addr: cfg.Addr, handler: m.handler, log: log}
	return m, nil
}

// Register adds collectors to the metrics, e.g. GoBGP's collector (from the
// bgp package, which alone imports GoBGP) and roamd's own gauges: all of
// them, or on error none. Registering a collector whose metrics clash with
// those already there (same name with other labels or help, or the same
// series) is an error, as is registering one twice. It may be called at any
// time, also while Run serves; each scrape calls every collector's Collect,
// which must return promptly.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for i, c := range cs {
		err := errors.New("nil collector")
		if c != nil {
			err = m.reg.Register(c)
		}
		if err != nil {
			for _, done := range cs[:i] {
				m.reg.Unregister(done)
			}
			return fmt.Errorf("api: metrics: registering collector %d of %d (%T): %w", i+1, len(cs), c, err)
		}
	}
	return nil
}

// Registry is the registry behind the metrics, for what Register does not
// cover, e.g. Unregister.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves MetricsPath; Run serves it on its own listener. For tests.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Listen binds the listen address, so that Addr is known before Run; as
// Server.Listen.
func (m *Metrics) Listen() error { return m.l.listen() }

// Addr is the address the metrics server listens on; "" before Listen or Run
// has bound it.
func (m *Metrics) Addr() string { return m.l.boundAddr() }

// Run serves MetricsPath until ctx is done, then shuts down gracefully. It
// returns nil on cancellation, after every connection has been closed.
func (m *Metrics) Run(ctx context.Context) error { return m.l.run(ctx) }
