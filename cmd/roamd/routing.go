package main

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/roamnet/roam/bgp"
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

// fibPlan is what the learned best paths ask of the tunnel and the kernel.
type fibPlan struct {
	allowed map[wgtypes.Key][]netip.Prefix // extra AllowedIPs per peer
	kernel  []fib.Route                    // gateway routes
	routes  []installed                    // both, sorted by prefix
	skipped map[netip.Prefix]string        // best paths not installed, and why
}

// planFIB decides where each best path goes: a path whose next hop is a
// peer's overlay address goes into that peer's AllowedIPs (package tunnel
// then routes it into roam0); a path from an external neighbour becomes a
// kernel route via its next hop; originated paths go nowhere. A prefix the
// static configuration routes already (a peer's overlay address or routes)
// is left to it. stale routes from a previous run are kept until a best path
// for their prefix arrives.
func planFIB(best map[netip.Prefix]bgp.Route, peers []tunnel.Peer, overlay map[netip.Addr]int, stale []fib.Route) fibPlan {
	plan := fibPlan{allowed: map[wgtypes.Key][]netip.Prefix{}, skipped: map[netip.Prefix]string{}}
	static := map[netip.Prefix]bool{}
	for _, p := range peers {
		for _, a := range p.AllowedIPs {
			static[a] = true
		}
	}
	for prefix, r := range best {
		switch {
		case r.Originated:
			continue
		case static[prefix]:
			plan.skipped[prefix] = "routed to a peer by the configuration"
			continue
		}
		if i, ok := overlay[r.NextHop]; ok {
			p := peers[i]
			plan.allowed[p.PublicKey] = append(plan.allowed[p.PublicKey], prefix)
			plan.routes = append(plan.routes, installed{Prefix: prefix, Peer: p.Name, Key: p.PublicKey})
			continue
		}
		if !r.NextHop.IsValid() || r.NextHop.IsUnspecified() {
			plan.skipped[prefix] = "no next hop"
			continue
		}
		if overlayPool.Contains(r.NextHop) {
			// A peer just removed (a reload), its session not yet gone: a
			// gateway route into the tunnel would collide with the tunnel's.
			plan.skipped[prefix] = noPeerNextHop
			continue
		}
		plan.kernel = append(plan.kernel, fib.Route{Prefix: prefix, Gateway: r.NextHop})
		plan.routes = append(plan.routes, installed{Prefix: prefix, Gateway: r.NextHop})
	}
	for _, s := range stale {
		if _, ok := best[s.Prefix]; ok {
			continue
		}
		plan.kernel = append(plan.kernel, s)
		plan.routes = append(plan.routes, installed{Prefix: s.Prefix, Gateway: s.Gateway, Stale: true})
	}
	for _, ps := range plan.allowed {
		slices.SortFunc(ps, comparePrefix)
	}
	slices.SortFunc(plan.kernel, compareRoute)
	slices.SortFunc(plan.routes, compareInstalled)
	return plan
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
