package bgp

import (
	"github.com/osrg/gobgp/v3/pkg/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// newUpdatesCounter counts best-path changes delivered on Updates.
func newUpdatesCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roam_bgp_updates_total",
		Help: "Best-path changes delivered to the route installer, by action (best: new or changed best path, withdraw: no path left).",
	}, []string{"action"})
	c.WithLabelValues("best")
	c.WithLabelValues("withdraw")
	return c
}

func (s *Speaker) countDelivered(ev RouteEvent) {
	action := "best"
	if ev.Withdrawn {
		action = "withdraw"
	}
	s.updatesTotal.WithLabelValues(action).Inc()
}

// Collector returns a Prometheus collector for the speaker: GoBGP's own peer
// and route metrics (bgp_*, from gobgp/pkg/metrics) while Run is running and
// none otherwise, plus roam_bgp_updates_total{action="best"|"withdraw"}. It
// may be registered once, before Run, and collected at any time.
func (s *Speaker) Collector() prometheus.Collector { return (*collector)(s) }

type collector Speaker

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	// GoBGP's Describe sends fixed descriptions and never touches the server.
	metrics.NewBgpCollector(nil).Describe(ch)
	c.updatesTotal.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.updatesTotal.Collect(ch)
	// A server stopped while it is being collected still answers (its
	// Serve loop keeps running) with no neighbours.
	if srv, err := (*Speaker)(c).server(); err == nil {
		metrics.NewBgpCollector(srv).Collect(ch)
	}
}
