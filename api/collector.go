package api

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the Source call of one scrape.
const scrapeTimeout = 10 * time.Second

var (
	descTunnelPeers = prometheus.NewDesc("roam_tunnel_peers",
		"Number of WireGuard peers configured on the tunnel device.", nil, nil)
	descPeerRx = prometheus.NewDesc("roam_peer_rx_bytes_total",
		"Bytes received from the peer through the tunnel.", []string{"peer"}, nil)
	descPeerTx = prometheus.NewDesc("roam_peer_tx_bytes_total",
		"Bytes sent to the peer through the tunnel.", []string{"peer"}, nil)
	descPeerHandshake = prometheus.NewDesc("roam_peer_last_handshake_seconds",
		"Unix time of the last completed WireGuard handshake with the peer; 0 if there was none.", []string{"peer"}, nil)
)

// peerCollector reads Source.Peers at scrape time.
type peerCollector struct {
	src Source
	log *slog.Logger
}

func newPeerCollector(src Source, log *slog.Logger) *peerCollector {
	return &peerCollector{src: src, log: log}
}

// Describe implements prometheus.Collector.
func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTunnelPeers
	ch <- descPeerRx
	ch <- descPeerTx
	ch <- descPeerHandshake
}

// Collect implements prometheus.Collector. A peer is labelled with its name,
// or its public key if it has none; a second peer with the same label is
// left out (and logged), since Prometheus refuses duplicate series.
func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	resp, err := c.src.Peers(ctx)
	if err == nil && resp == nil {
		err = fmt.Errorf("no peer list")
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descTunnelPeers, fmt.Errorf("api: metrics: reading peers: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(descTunnelPeers, prometheus.GaugeValue, float64(len(resp.GetPeers())))
	seen := make(map[string]bool, len(resp.GetPeers()))
	for _, p := range resp.GetPeers() {
		label := p.GetName()
		if label == "" {
			label = p.GetPublicKey()
		}
		if seen[label] {
			c.log.Warn("metrics: two peers with the same name; exporting the first", "peer", label)
			continue
		}
		seen[label] = true
		var hs float64
		if t := p.GetLastHandshake(); t != nil {
			hs = float64(t.GetSeconds()) + float64(t.GetNanos())/1e9
		}
		ch <- prometheus.MustNewConstMetric(descPeerRx, prometheus.CounterValue, float64(p.GetRxBytes()), label)
		ch <- prometheus.MustNewConstMetric(descPeerTx, prometheus.CounterValue, float64(p.GetTxBytes()), label)
		ch <- prometheus.MustNewConstMetric(descPeerHandshake, prometheus.GaugeValue, hs, label)
	}
}
