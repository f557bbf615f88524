package main

import (
	"net/netip"
	"slices"

	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/bgp/fib"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// planFIB is the slow, obviously correct reference for fibTable: it plans
// every best path from scratch. Tests check fibTable against it.

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
