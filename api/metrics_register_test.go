package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// bgpLikeCollector is shaped like GoBGP's metrics.NewBgpCollector (which api
// must not import): fixed descriptors read at scrape time, and on failure an
// invalid metric whose descriptor was never described.
type bgpLikeCollector struct{ err error }

var descBGPPeerState = prometheus.NewDesc("bgp_peer_state",
	"State of the BGP session with peer and its administrative state",
	[]string{"peer", "session_state", "admin_state"}, nil)

func (c *bgpLikeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descBGPPeerState }

func (c *bgpLikeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("error", "error during metric collection", nil, nil), c.err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descBGPPeerState, prometheus.GaugeValue, 1, "100.64.0.2", "ESTABLISHED", "UP")
}

// roamd registers GoBGP's collector and gauges of its own; a scrape shows
// them beside the built-in metrics.
func TestMetricsRegister(t *testing.T) {
	m := newTestMetrics(t, MetricsConfig{}, testSrc())
	installed := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "roam_routes_installed",
		Help: "Routes roamd has installed in the kernel.",
	}, []string{"family"})
	installed.WithLabelValues("ipv4").Set(3)
	if err := m.Register(&bgpLikeCollector{}, installed); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, m.Handler(), "GET", "/metrics", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	mfs := scrape(t, body)
	for _, want := range []string{
		`bgp_peer_state{admin_state="UP",peer="100.64.0.2",session_state="ESTABLISHED"} 1`,
		`roam_routes_installed{family="ipv4"} 3`,
		`roam_peer_rx_bytes_total{peer="b"} 1234`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if mf := mfs["roam_routes_installed"]; mf.GetType() != dto.MetricType_GAUGE || mf.GetHelp() == "" {
		t.Errorf("roam_routes_installed: %v", mf)
	}
	// Gauges set after registering show in the next scrape.
	installed.WithLabelValues("ipv6").Set(1)
	if _, body := do(t, m.Handler(), "GET", "/metrics", nil, nil); !strings.Contains(body, `roam_routes_installed{family="ipv6"} 1`) {
		t.Errorf("second scrape lacks the new series:\n%s", body)
	}
}

// A failing BGP collection fails the scrape, as a failing peer collection
// does: Prometheus then marks the target down.
func TestMetricsRegisteredCollectorFails(t *testing.T) {
	m := newTestMetrics(t, MetricsConfig{}, testSrc())
	if err := m.Register(&bgpLikeCollector{err: errors.New("bgp: server stopped")}); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, m.Handler(), "GET", "/metrics", nil, nil)
	if resp.StatusCode != 500 || !strings.Contains(body, "bgp: server stopped") {
		t.Errorf("got %d %q, want 500 naming the error", resp.StatusCode, body)
	}
}

func TestMetricsRegisterErrors(t *testing.T) {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	for _, tc := range []struct {
		name string
		cs   []prometheus.Collector
		want string
	}{
		{"nil", []prometheus.Collector{nil}, "api: metrics: registering collector 1 of 1 (<nil>): nil collector"},
		{"built-in name, other help", []prometheus.Collector{gauge("roam_bgp_ok", "Fine."), gauge("roam_tunnel_peers", "Peers.")},
			"api: metrics: registering collector 2 of 2 (*prometheus.gauge): a previously registered descriptor with the same fully-qualified name"},
		{"built-in metric again", []prometheus.Collector{gauge("roam_bgp_ok", "Fine."),
			gauge("roam_tunnel_peers", "Number of WireGuard peers configured on the tunnel device.")},
			`api: metrics: registering collector 2 of 2 (*prometheus.gauge): descriptor Desc{fqName: "roam_tunnel_peers"`},
		{"same collector twice", func() []prometheus.Collector {
			c := &bgpLikeCollector{}
			return []prometheus.Collector{c, c}
		}(), "api: metrics: registering collector 2 of 2 (*api.bgpLikeCollector): duplicate metrics collector registration attempted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMetrics(t, MetricsConfig{}, testSrc())
			err := m.Register(tc.cs...)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			// All or nothing: the collectors before the failing one are
			// not registered, so a second try with a fix succeeds.
			if c := tc.cs[0]; c != nil {
				if err := m.Register(c); err != nil {
					t.Errorf("registering the first collector again: %v", err)
				}
			}
			if resp, body := do(t, m.Handler(), "GET", "/metrics", nil, nil); resp.StatusCode != 200 {
				t.Errorf("scrape after a failed Register: %d %s", resp.StatusCode, body)
			}
		})
	}
}
