package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descHandoverDuration = prometheus.NewDesc("roam_handover_duration_seconds",
		"Time from an underlay change (this node's or a peer's) being seen to a phase of the handover working again: hub_path (a hub answers), direct_path (per peer), routes (BGP converged).",
		[]string{"phase"}, nil)
	descICEState = prometheus.NewDesc("roam_ice_state",
		"State of the ICE agent for the peer: 1 for the current state, 0 for the others.", []string{"peer", "state"}, nil)
	descPathType = prometheus.NewDesc("roam_path_type",
		"Path traffic to the peer takes: 1 for the current one (direct, hub or none), 0 for the others.", []string{"peer", "type"}, nil)
)

// iceStates and pathTypes are the values of the state sets roam_ice_state
// and roam_path_type; every peer has a series for each.
var (
	iceStates = []string{"new", "checking", "connected", "completed", "disconnected", "failed", "closed", "off"}
	pathTypes = []string{"direct", "hub", "none"}
)

// mobilityCollector reads Source.Events (for the histograms) and
// Source.Paths at scrape time. On a node without mobility it exports no
// histograms, without direct paths no path series.
type mobilityCollector struct {
	src Source
	log *slog.Logger
}

func newMobilityCollector(src Source, log *slog.Logger) *mobilityCollector {
	return &mobilityCollector{src: src, log: log}
}

// Describe implements prometheus.Collector.
func (c *mobilityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHandoverDuration
	ch <- descICEState
	ch <- descPathType
}

// Collect implements prometheus.Collector.
func (c *mobilityCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	c.collectHistograms(ctx, ch)
	c.collectPaths(ctx, ch)
}

// collectHistograms exports one histogram per phase. It asks for the events
// after the highest possible ID: none, only the histograms.
func (c *mobilityCollector) collectHistograms(ctx context.Context, ch chan<- prometheus.Metric) {
	resp, err := c.src.Events(ctx, math.MaxUint64)
	if errors.Is(err, ErrDisabled) {
		return
	}
	if err == nil && resp == nil {
		err = errors.New("no event list")
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descHandoverDuration, fmt.Errorf("api: metrics: reading handover events: %w", err))
		return
	}
	seen := map[string]bool{}
	for _, h := range resp.GetHistograms() {
		phase := h.GetPhase()
		if seen[phase] {
			c.log.Warn("metrics: two histograms of the same handover phase; exporting the first", "phase", phase)
			continue
		}
		seen[phase] = true
		bounds, counts := h.GetBuckets(), h.GetCounts()
		var bad error
		switch {
		case len(bounds) != len(counts):
			bad = fmt.Errorf("%d bucket bounds for %d counts", len(bounds), len(counts))
		case !slices.IsSorted(bounds) || slices.ContainsFunc(bounds, math.IsNaN):
			bad = fmt.Errorf("bucket bounds %v not ascending", bounds)
		}
		if bad != nil {
			ch <- prometheus.NewInvalidMetric(descHandoverDuration, fmt.Errorf("api: metrics: histogram of phase %q: %w", phase, bad))
			continue
		}
		buckets := make(map[float64]uint64, len(bounds))
		for i, b := range bounds {
			buckets[b] = counts[i]
		}
		m, err := prometheus.NewConstHistogram(descHandoverDuration, h.GetCount(), h.GetSum(), buckets, phase)
		if err != nil {
			m = prometheus.NewInvalidMetric(descHandoverDuration, fmt.Errorf("api: metrics: histogram of phase %q: %w", phase, err))
		}
		ch <- m
	}
}

// collectPaths exports the state sets of each peer's ICE state and path
// type. Peers are labelled as by peerCollector: with the name, or the
// public key if there is none; a second path with the same label is left
// out (and logged).
func (c *mobilityCollector) collectPaths(ctx context.Context, ch chan<- prometheus.Metric) {
	resp, err := c.src.Paths(ctx)
	if errors.Is(err, ErrDisabled) {
		return
	}
	if err == nil && resp == nil {
		err = errors.New("no path list")
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPathType, fmt.Errorf("api: metrics: reading paths: %w", err))
		return
	}
	seen := make(map[string]bool, len(resp.GetPaths()))
	for _, p := range resp.GetPaths() {
		label := p.GetName()
		if label == "" {
			label = p.GetPublicKey()
		}
		if seen[label] {
			c.log.Warn("metrics: two paths with the same peer name; exporting the first", "peer", label)
			continue
		}
		seen[label] = true
		stateSet(ch, descICEState, label, iceStates, p.GetIceState())
		stateSet(ch, descPathType, label, pathTypes, p.GetType())
	}
}

// stateSet sends one series per value of values for peer: 1 for current, 0
// for the others (all 0 if current is none of them).
func stateSet(ch chan<- prometheus.Metric, desc *prometheus.Desc, peer string, values []string, current string) {
	for _, v := range values {
		var x float64
		if v == current {
			x = 1
		}
		m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, x, peer, v)
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, fmt.Errorf("api: metrics: peer %q: %w", peer, err))
		}
		ch <- m
	}
}
