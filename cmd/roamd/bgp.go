package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/roamnet/roam/bgp"
)

// newSpeaker builds the BGP speaker for cfg, or returns nil when BGP is off.
// Sessions run between overlay addresses, over roam0: they survive every
// underlay change. The node's prefixes are announced with its overlay IPv4
// address as next hop.
func newSpeaker(ctx context.Context, cfg *Config, log *slog.Logger) (*bgp.Speaker, error) {
	if cfg.BGP.ASN == 0 {
		return nil, nil
	}
	self := overlayIPv4(cfg.addrs)
	bc := bgp.Config{
		ASN:             cfg.BGP.ASN,
		RouterID:        self,
		ListenPort:      cfg.BGP.ListenPort,
		ListenAddresses: []netip.Addr{self},
		GRPCAddress:     cfg.BGP.GRPCListen,
	}
	for _, p := range cfg.peers {
		if p.asn != 0 {
			bc.Neighbors = append(bc.Neighbors, bgp.Neighbor{Address: overlayIPv4(p.addrs), ASN: p.asn, Description: p.name})
		}
	}
	if !bc.GRPCIsLoopback() {
		log.Warn("bgp: the gRPC API has no authentication and listens on a non-loopback address", "addr", bc.GRPCAddress)
	}
	s, err := bgp.New(bc, log)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	for _, p := range cfg.BGP.prefixes {
		if err := s.Announce(ctx, p, self); err != nil {
			return nil, err
		}
	}
	return s, nil
}
