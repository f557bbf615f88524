package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

func TestMobilityMetrics(t *testing.T) {
	src := eventsSrc()
	src.SetPaths(testPaths()...)
	_, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
	mfs := scrape(t, body)

	mf := mfs["roam_handover_duration_seconds"]
	if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM || mf.GetHelp() == "" {
		t.Fatalf("roam_handover_duration_seconds: %v, want a histogram with help", mf)
	}
	got := map[string]string{}
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		var buckets []string
		for _, b := range h.GetBucket() {
			buckets = append(buckets, fmt.Sprintf("%g:%d", b.GetUpperBound(), b.GetCumulativeCount()))
		}
		got[m.GetLabel()[0].GetValue()] = fmt.Sprintf("%s count %d sum %g", strings.Join(buckets, " "), h.GetSampleCount(), h.GetSampleSum())
	}
	want := map[string]string{
		"hub_path":    "0.1:0 0.5:1 1:3 +Inf:4 count 4 sum 3.2",
		"direct_path": "0.1:0 0.5:2 1:2 +Inf:2 count 2 sum 0.78",
		"routes":      "0.1:0 0.5:0 1:1 +Inf:1 count 1 sum 0.65",
	}
	if len(got) != len(want) {
		t.Errorf("histograms %v, want %v", got, want)
	}
	for phase, w := range want {
		if got[phase] != w {
			t.Errorf("phase %s: %q, want %q", phase, got[phase], w)
		}
	}

	// One series per peer and state, 1 for the current one.
	ice := series(t, mfs["roam_ice_state"], dto.MetricType_GAUGE)
	if len(ice) != 3*len(iceStates) {
		t.Errorf("%d ICE state series, want %d", len(ice), 3*len(iceStates))
	}
	types := series(t, mfs["roam_path_type"], dto.MetricType_GAUGE)
	if len(types) != 3*len(pathTypes) {
		t.Errorf("%d path type series, want %d", len(types), 3*len(pathTypes))
	}
	for _, tc := range []struct {
		set     map[string]float64
		peer    string
		current string
	}{
		{ice, "b", "connected"}, {ice, "c", "failed"}, {ice, keyA, "new"},
		{types, "b", "direct"}, {types, "c", "hub"}, {types, keyA, "none"},
	} {
		var ones []string
		for k, v := range tc.set {
			if strings.HasPrefix(k, tc.peer+",") && v == 1 {
				ones = append(ones, k)
			}
		}
		if len(ones) != 1 || ones[0] != tc.peer+","+tc.current {
			t.Errorf("peer %s: series at 1: %v, want only %s", tc.peer, ones, tc.current)
		}
	}
	for _, w := range []string{
		`roam_handover_duration_seconds_bucket{phase="hub_path",le="0.5"} 1`,
		`roam_handover_duration_seconds_bucket{phase="hub_path",le="+Inf"} 4`,
		`roam_ice_state{peer="b",state="connected"} 1`,
		`roam_ice_state{peer="b",state="checking"} 0`,
		`roam_path_type{peer="c",type="hub"} 1`,
		`roam_path_type{peer="c",type="direct"} 0`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("scrape lacks %s", w)
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

// A state that is none of the known ones leaves every series at 0; the
// second path with the same label is left out.
func TestMobilityMetricsLabels(t *testing.T) {
	src := &apitest.Source{}
	src.SetPaths(
		&roampb.Path{Name: "b", Type: "hub", IceState: "haunted"},
		&roampb.Path{Name: "b", Type: "direct", IceState: "connected"},
	)
	_, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
	mfs := scrape(t, body)
	for k, v := range series(t, mfs["roam_ice_state"], dto.MetricType_GAUGE) {
		if v != 0 {
			t.Errorf("%s = %v, want 0", k, v)
		}
	}
	if got := series(t, mfs["roam_path_type"], dto.MetricType_GAUGE); len(got) != 3 || got["b,hub"] != 1 {
		t.Errorf("path types %v, want the first b's: hub", got)
	}
	if _, ok := mfs["roam_handover_duration_seconds"]; ok {
		t.Error("histograms without any handover histogram from the Source")
	}
}

// A node without mobility or direct paths exports none of their series
// and the scrape succeeds; any other failure fails the scrape, as does a
// malformed histogram.
func TestMobilityMetricsSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		eventsErr error
		pathsErr  error
		hist      *roampb.HandoverHistogram
		code      int
		want      string // in the body
		absent    string // not in the body
	}{
		{name: "mobility off", eventsErr: fmt.Errorf("mobility: %w", ErrDisabled), code: 200,
			want: `roam_path_type{peer="b",type="direct"} 1`, absent: "roam_handover_"},
		{name: "direct paths off", pathsErr: fmt.Errorf("ice: %w", ErrDisabled), code: 200,
			want: `roam_handover_duration_seconds_count{phase="routes"} 1`, absent: "roam_path_type"},
		{name: "events fail", eventsErr: errors.New("mobility: recorder gone"), code: 500,
			want: "reading handover events: mobility: recorder gone"},
		{name: "paths fail", pathsErr: fmt.Errorf("ice: %w", ErrUnavailable), code: 500,
			want: "reading paths: ice: not available yet"},
		{name: "bounds without counts", hist: &roampb.HandoverHistogram{Phase: "rebind", Buckets: []float64{1, 2}, Counts: []uint64{1}}, code: 500,
			want: `histogram of phase "rebind": 2 bucket bounds for 1 counts`},
		{name: "bounds not ascending", hist: &roampb.HandoverHistogram{Phase: "rebind", Buckets: []float64{2, 1}, Counts: []uint64{1, 1}}, code: 500,
			want: `histogram of phase "rebind": bucket bounds [2 1] not ascending`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := eventsSrc()
			src.SetPaths(testPaths()...)
			src.SetEventsErr(tc.eventsErr)
			src.SetPathsErr(tc.pathsErr)
			if tc.hist != nil {
				src.SetHistograms(append(testHistograms(), tc.hist)...)
			}
			resp, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d, want %d and a body with %q:\n%s", resp.StatusCode, tc.code, tc.want, body)
			}
			if tc.absent != "" && strings.Contains(body, tc.absent) {
				t.Errorf("the scrape has %s series:\n%s", tc.absent, body)
			}
		})
	}
}

// Labels that are not UTF-8 fail the scrape rather than the process.
func TestMobilityMetricsBadLabels(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*apitest.Source)
		want string
	}{
		{"phase", func(src *apitest.Source) {
			src.SetHistograms(&roampb.HandoverHistogram{Phase: "bad\xff", Buckets: []float64{1}, Counts: []uint64{1}, Count: 1})
		}, `histogram of phase "bad\xff"`},
		{"peer", func(src *apitest.Source) { src.SetPaths(&roampb.Path{Name: "bad\xff", Type: "hub"}) }, `peer "bad\xff"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &apitest.Source{}
			tc.set(src)
			resp, body := do(t, newTestMetrics(t, MetricsConfig{}, src).Handler(), "GET", "/metrics", nil, nil)
			if resp.StatusCode != 500 || !strings.Contains(body, tc.want) {
				t.Errorf("got %d, want 500 and a body with %s:\n%s", resp.StatusCode, tc.want, body)
			}
		})
	}
}
