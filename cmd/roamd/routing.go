package main

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/roamnet/roam/bgp/fib"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// noPeerNextHop is why a best path via an overlay address that is no
// peer's is not installed.
const noPeerNextHop = "next hop is an overlay address of no peer"

// installed is where one learned best path went.
type installed struct {
	Prefix  netip.Prefix
	Peer    string      // roam peer whose AllowedIPs carry it; "" for a gateway route
	Key     wgtypes.Key // that peer's key
	Gateway netip.Addr  // underlay next hop of an external route
	Stale   bool        // left by the previous run, not yet confirmed
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func compareRoute(a, b fib.Route) int {
	return cmp.Or(comparePrefix(a.Prefix, b.Prefix), a.Gateway.Compare(b.Gateway))
}

func compareInstalled(a, b installed) int {
	return cmp.Or(comparePrefix(a.Prefix, b.Prefix), a.Gateway.Compare(b.Gateway))
}

// withLearned returns base with the plan's extra AllowedIPs added to their
// peers. base is not modified.
func withLearned(base tunnel.State, allowed map[wgtypes.Key][]netip.Prefix) tunnel.State {
	out := base
	out.Peers = make([]tunnel.Peer, len(base.Peers))
	for i, p := range base.Peers {
		if extra := allowed[p.PublicKey]; len(extra) > 0 {
			p.AllowedIPs = append(slices.Clip(p.AllowedIPs), extra...)
		}
		out.Peers[i] = p
	}
	return out
}

// overlayIndex maps every overlay address of the peers to the peer's index.
func overlayIndex(peers []peer) map[netip.Addr]int {
	m := map[netip.Addr]int{}
	for i, p := range peers {
		for _, a := range p.addrs {
			m[a.Addr()] = i
		}
	}
	return m
}
