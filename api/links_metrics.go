package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
)

var (
	descLinkRTT = prometheus.NewDesc("roam_link_rtt_seconds",
		"Smoothed round-trip time of the tunnel to the peer (RFC 6298 SRTT), from STAMP probes.", []string{"peer"}, nil)
	descLinkJitter = prometheus.NewDesc("roam_link_jitter_seconds",
		"Interarrival jitter of the probe replies from the peer (RFC 3550).", []string{"peer"}, nil)
	descLinkLoss = prometheus.NewDesc("roam_link_loss_ratio",
		"Fraction of probes lost over the recent window: round_trip, or forward (to the peer) and backward (from it) when the peer's reflector counts its own.",
		[]string{"peer", "direction"}, nil)
	descLinkUp = prometheus.NewDesc("roam_link_up",
		"Whether the tunnel to the peer is up (1) or down (0) by its probes.", []string{"peer"}, nil)
	descLinkCost = prometheus.NewDesc("roam_link_cost",
		"Smoothed cost of the tunnel to the peer as routing uses it: 256 for a perfect link up to 65535 for a dead one.", []string{"peer"}, nil)
	descLinkTransitions = prometheus.NewDesc("roam_link_transitions_total",
		"State changes of the tunnel to the peer, by the state changed to; to=\"down\" counts the flaps.", []string{"peer", "to"}, nil)
)

// linkCollector reads Source.Links at scrape time. On a node without link
// probing it exports nothing.
type linkCollector struct {
	src Source
	log *slog.Logger
}

func newLinkCollector(src Source, log *slog.Logger) *linkCollector {
	return &linkCollector{src: src, log: log}
}

// Describe implements prometheus.Collector.
func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLinkRTT
	ch <- descLinkJitter
	ch <- descLinkLoss
	ch <- descLinkUp
	ch <- descLinkCost
	ch <- descLinkTransitions
}

// Collect implements prometheus.Collector. Links are labelled as peers are
// by peerCollector: with the name, or the public key if there is none; a
// second link with the same label is left out (and logged). A link without
// a reply yet has no RTT and jitter series; forward and backward loss are
// there only when known.
func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	resp, err := c.src.Links(ctx)
	if errors.Is(err, ErrDisabled) {
		return
	}
	if err == nil && resp == nil {
		err = fmt.Errorf("no link list")
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descLinkUp, fmt.Errorf("api: metrics: reading links: %w", err))
		return
	}
	seen := make(map[string]bool, len(resp.GetLinks()))
	for _, l := range resp.GetLinks() {
		label := l.GetName()
		if label == "" {
			label = l.GetPublicKey()
		}
		if seen[label] {
			c.log.Warn("metrics: two links with the same peer name; exporting the first", "peer", label)
			continue
		}
		seen[label] = true
		if l.GetRtt() != nil {
			ch <- prometheus.MustNewConstMetric(descLinkRTT, prometheus.GaugeValue, seconds(l.GetRtt()), label)
			ch <- prometheus.MustNewConstMetric(descLinkJitter, prometheus.GaugeValue, seconds(l.GetJitter()), label)
		}
		ch <- prometheus.MustNewConstMetric(descLinkLoss, prometheus.GaugeValue, l.GetLoss(), label, "round_trip")
		if l.GetLossDirections() {
			ch <- prometheus.MustNewConstMetric(descLinkLoss, prometheus.GaugeValue, l.GetLossForward(), label, "forward")
			ch <- prometheus.MustNewConstMetric(descLinkLoss, prometheus.GaugeValue, l.GetLossBackward(), label, "backward")
		}
		var up float64
		if l.GetState() == "up" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, up, label)
		ch <- prometheus.MustNewConstMetric(descLinkCost, prometheus.GaugeValue, float64(l.GetCost()), label)
		// Every flap is a change to down; the other changes are to up.
		flaps, all := l.GetFlaps(), l.GetTransitions()
		ch <- prometheus.MustNewConstMetric(descLinkTransitions, prometheus.CounterValue, float64(flaps), label, "down")
		ch <- prometheus.MustNewConstMetric(descLinkTransitions, prometheus.CounterValue, float64(all-min(flaps, all)), label, "up")
	}
}

// seconds is d in seconds; 0 for an unset d.
func seconds(d *durationpb.Duration) float64 {
	return float64(d.GetSeconds()) + float64(d.GetNanos())/1e9
}
