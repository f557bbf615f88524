package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/roamnet/roam/bgp"
)

// bgpConfig is the speaker's configuration for cfg. Sessions with roam peers
// run between overlay addresses, over roam0: they survive every underlay
// change. External neighbours are reached over the underlay, so the speaker
// listens on every address when there are any. A reload passes its
// Neighbors to the running speaker (SetNeighbors).
func bgpConfig(cfg *Config, restarting bool) bgp.Config {
	b := cfg.BGP
	bc := bgp.Config{
		ASN:                    b.asn,
		AllowPublicASN:         true,
		RouterID:               b.routerID,
		ListenPort:             b.ListenPort,
		GRPCAddress:            b.GRPCListen,
		HoldTime:               b.hold,
		KeepaliveInterval:      b.keepalive,
		DisableGracefulRestart: !*b.GracefulRestart,
		Restarting:             restarting,
		MaxPrefixes:            b.MaxPrefixes,
		AcceptDefault:          b.AcceptDefault,
		Transit:                *b.Transit,
		InternalPrefixes:       b.internal,
	}
	if len(b.neighbors) == 0 {
		bc.ListenAddresses = []netip.Addr{overlayIPv4(cfg.addrs)}
	}
	self := overlayIPv4(cfg.addrs)
	for _, p := range cfg.peers {
		if p.asn != 0 {
			// Only one side of a roam session dials: the one with the lower
			// overlay address. When both dial, two GoBGP speakers that
			// reset together (a restart) each refuse the other's connection
			// while idle and stay in step, never getting past OpenSent.
			addr := overlayIPv4(p.addrs)
			bc.Neighbors = append(bc.Neighbors, bgp.Neighbor{Address: addr, ASN: p.asn,
				Description: p.name, Kind: bgp.KindRoam, Passive: addr.Less(self)})
		}
	}
	for _, n := range b.neighbors {
		bc.Neighbors = append(bc.Neighbors, bgp.Neighbor{Address: n.addr, ASN: n.ASN, Description: n.Description,
			Kind: bgp.KindExternal, Password: n.Password, Multihop: n.Multihop, Passive: n.Passive, Port: n.Port,
			MaxPrefixes: n.MaxPrefixes})
	}
	return bc
}

// newSpeaker builds the BGP speaker for cfg, or returns nil when BGP is off.
// The node's prefixes are announced with its overlay address of their
// family as next hop.
func newSpeaker(ctx context.Context, cfg *Config, restarting bool, log *slog.Logger) (*bgp.Speaker, error) {
	if cfg.BGP == nil {
		return nil, nil
	}
	bc := bgpConfig(cfg, restarting)
	if !bc.GRPCIsLoopback() {
		log.Warn("bgp: the gRPC API has no authentication and listens on a non-loopback address", "addr", bc.GRPCAddress)
	}
	s, err := bgp.New(bc, log)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	for _, p := range cfg.BGP.prefixes {
		if err := s.Announce(ctx, p, nextHopFor(cfg, p)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// nextHopFor is this node's overlay address of p's family; invalid if none.
func nextHopFor(cfg *Config, p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		return overlayIPv4(cfg.addrs)
	}
	return overlayIPv6(cfg.addrs)
}
