package api

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// series maps a family's series, named by their labels other than the
// first ("b" or "b,forward"), to their values.
func series(t *testing.T, mf *dto.MetricFamily, typ dto.MetricType) map[string]float64 {
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
		// The peer first, then the family's other label, if any.
		var key []string
		for _, l := range m.GetLabel() {
			if l.GetName() == "peer" {
				key = append([]string{l.GetValue()}, key...)
			} else {
				key = append(key, l.GetValue())
			}
		}
		v := m.GetGauge().GetValue()
		if typ == dto.MetricType_COUNTER {
			v = m.GetCounter().GetValue()
		}
		out[strings.Join(key, ",")] = v
	}
	return out
}

func TestLinkMetrics(t *testing.T) {
	_, body := do(t, newTestMetrics(t, MetricsConfig{}, testSrc()).Handler(), "GET", "/metrics", nil, nil)
	mfs := scrape(t, body)
	for _, tc := range []struct {
		name string
		typ  dto.MetricType
		want map[string]float64
	}{
		// c has had no reply: no RTT or jitter.
		{"roam_link_rtt_seconds", dto.MetricType_GAUGE, map[string]float64{"b": 0.012345}},
		{"roam_link_jitter_seconds", dto.MetricType_GAUGE, map[string]float64{"b": 0.0008}},
		// Only b's reflector counts both directions.
		{"roam_link_loss_ratio", dto.MetricType_GAUGE, map[string]float64{
			"b,round_trip": 0.015, "b,forward": 0.01, "b,backward": 0.005, "c,round_trip": 1}},
		{"roam_link_up", dto.MetricType_GAUGE, map[string]float64{"b": 1, "c": 0}},
		{"roam_link_cost", dto.MetricType_GAUGE, map[string]float64{"b": 300, "c": 65535}},
		// b: 5 transitions, 2 of them flaps.
		{"roam_link_transitions_total", dto.MetricType_COUNTER, map[string]float64{
			"b,down": 2, "b,up": 3, "c,down": 0, "c,up": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := series(t, mfs[tc.name], tc.typ)
			if len(got) != len(tc.want) {
				t.Errorf("series %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-9 {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
		})
	}
	for _, want := range []string{
		`roam_link_loss_ratio{direction="forward",peer="b"} 0.01`,
		`roam_link_transitions_total{peer="b",to="down"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
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

// Links are labelled as peers are: by name, else by public key, the first
// of two with the same name only. A buggy count of flaps above the
// transitions gives no negative counter.
func TestLinkMetricsLabels(t *testing.T) {
	src := &apitest.Source{}
	src.SetLinks(
		&roampb.Link{Name: "b", State: "up", Cost: 256, Rtt: durationpb.New(time.Millisecond)},
		&roampb.Link{Name: "b", State: "down", Cost: 1000}, // duplicate name: left out
		&roampb.Link{PublicKey: keyC, State: "up", Cost: 512, Flaps: 3, Transitions: 2},
	)
	_, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
	mfs := scrape(t, body)
	if got := series(t, mfs["roam_link_cost"], dto.MetricType_GAUGE); len(got) != 2 || got["b"] != 256 || got[keyC] != 512 {
		t.Errorf("cost by peer %v, want b=256 and %s=512", got, keyC)
	}
	if got := series(t, mfs["roam_link_up"], dto.MetricType_GAUGE); len(got) != 2 || got["b"] != 1 || got[keyC] != 1 {
		t.Errorf("up by peer %v, want both 1", got)
	}
	// An RTT without jitter yet exports jitter 0.
	if got := series(t, mfs["roam_link_jitter_seconds"], dto.MetricType_GAUGE); len(got) != 1 || got["b"] != 0 {
		t.Errorf("jitter by peer %v, want b=0 only", got)
	}
	if got := series(t, mfs["roam_link_transitions_total"], dto.MetricType_COUNTER); got[keyC+",down"] != 3 || got[keyC+",up"] != 0 {
		t.Errorf("transitions %v, want %s down=3 up=0", got, keyC)
	}
}

// A node without link probing exports no link series and the scrape
// succeeds; any other failure of Links fails the scrape.
func TestLinkMetricsSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		want string // in the body
	}{
		{"disabled", fmt.Errorf("probe: %w", ErrDisabled), 200, `roam_peer_rx_bytes_total{peer="b"} 1234`},
		{"unavailable", fmt.Errorf("probe: %w", ErrUnavailable), 500, "reading links: probe: not available yet"},
		{"failure", errors.New("probe: prober stopped"), 500, "reading links: probe: prober stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testSrc()
			src.SetLinksErr(tc.err)
			resp, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d, want %d and a body with %q:\n%s", resp.StatusCode, tc.code, tc.want, body)
			}
			if tc.code == 200 && strings.Contains(body, "roam_link_") {
				t.Errorf("link probing off, yet the scrape has link series:\n%s", body)
			}
		})
	}
}
