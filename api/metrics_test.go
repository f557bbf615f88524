package api

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

func newTestMetrics(t *testing.T, cfg MetricsConfig, src Source) *Metrics {
	t.Helper()
	m, err := NewMetrics(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scrape fetches /metrics from h and parses it.
func scrape(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return mfs
}

// byPeer maps the peer label of a family's series to their values.
func byPeer(t *testing.T, mf *dto.MetricFamily, typ dto.MetricType) map[string]float64 {
	t.Helper()
	if mf == nil {
		t.Fatal("metric family missing")
	}
	if mf.GetType() != typ {
		t.Errorf("%s has type %v, want %v", mf.GetName(), mf.GetType(), typ)
	}
	if mf.GetHelp() == "" {
		t.Errorf("%s has no HELP", mf.GetName())
	}
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		var peer string
		for _, l := range m.GetLabel() {
			if l.GetName() == "peer" {
				peer = l.GetValue()
			}
		}
		switch typ {
		case dto.MetricType_COUNTER:
			out[peer] = m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			out[peer] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestMetricsScrape(t *testing.T) {
	h := newTestMetrics(t, MetricsConfig{}, testSrc()).Handler()
	resp, body := do(t, h, "GET", "/metrics", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	mfs := scrape(t, body)
	for _, tc := range []struct {
		name string
		typ  dto.MetricType
		want map[string]float64
	}{
		{"roam_tunnel_peers", dto.MetricType_GAUGE, map[string]float64{"": 2}},
		{"roam_peer_rx_bytes_total", dto.MetricType_COUNTER, map[string]float64{"b": 1234, "c": 0}},
		{"roam_peer_tx_bytes_total", dto.MetricType_COUNTER, map[string]float64{"b": 5 << 20, "c": 0}},
		{"roam_peer_last_handshake_seconds", dto.MetricType_GAUGE, map[string]float64{"b": float64(t0.Unix() - 12), "c": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := byPeer(t, mfs[tc.name], tc.typ)
			if len(got) != len(tc.want) {
				t.Errorf("series %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-6 {
					t.Errorf("peer %q = %v, want %v", k, g, v)
				}
			}
		})
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_requests_total"} {
		if mfs[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	// What promtool check metrics runs.
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestMetricsPeerLabels(t *testing.T) {
	src := &apitest.Source{}
	src.SetPeers(
		&roampb.Peer{Name: "b", RxBytes: 1},
		&roampb.Peer{Name: "b", RxBytes: 2}, // duplicate name: left out
		&roampb.Peer{PublicKey: keyC, RxBytes: 3},
	)
	_, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
	mfs := scrape(t, body)
	got := byPeer(t, mfs["roam_peer_rx_bytes_total"], dto.MetricType_COUNTER)
	if len(got) != 2 || got["b"] != 1 || got[keyC] != 3 {
		t.Errorf("rx by peer %v, want b=1 and %s=3", got, keyC)
	}
	if n := byPeer(t, mfs["roam_tunnel_peers"], dto.MetricType_GAUGE)[""]; n != 3 {
		t.Errorf("roam_tunnel_peers = %v, want 3", n)
	}
}

func TestMetricsSourceError(t *testing.T) {
	src := testSrc()
	src.SetErr(errors.New("device gone"))
	resp, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
	if resp.StatusCode != 500 || !strings.Contains(body, "reading peers: device gone") {
		t.Errorf("got %d %q, want 500 naming the error", resp.StatusCode, body)
	}
}

func TestMetricsRegistry(t *testing.T) {
	m := newTestMetrics(t, MetricsConfig{}, testSrc())
	// Registering the peer collector's metrics twice is refused.
	if err := m.Registry().Register(newPeerCollector(testSrc(), nil)); err == nil {
		t.Error("registering a second peer collector succeeded")
	}
}

func TestMetricsRun(t *testing.T) {
	apitest.CheckGoroutines(t)
	m := newTestMetrics(t, MetricsConfig{Addr: "127.0.0.1:0"}, testSrc())
	base := runServer(t, m)
	resp, body := get(t, "GET", base+"/metrics")
	if resp.StatusCode != 200 || !strings.Contains(body, `roam_peer_rx_bytes_total{peer="b"} 1234`) {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := get(t, "GET", base+"/"); resp.StatusCode != 404 {
		t.Errorf("GET /: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, "POST", base+"/metrics"); resp.StatusCode != 405 {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}

func TestNewMetricsErrors(t *testing.T) {
	if _, err := NewMetrics(MetricsConfig{}, nil, nil); err == nil || err.Error() != "api: metrics: nil Source" {
		t.Errorf("nil source: %v", err)
	}
	_, err := NewMetrics(MetricsConfig{Addr: "localhost:metrics"}, testSrc(), nil)
	if want := `api: metrics addr "localhost:metrics": port "metrics" is not a number in 0-65535`; err == nil || err.Error() != want {
		t.Errorf("bad addr: %v, want %q", err, want)
	}
}
