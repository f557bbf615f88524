package main

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/bgp/fib"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// fibTable is the install plan (planFIB in planfib_test.go is its from-scratch reference) kept current one best-path change at a time,
// with what changed since it was last taken: a batch of updates costs what
// it changes, not a re-plan of every route. It is built for one set of
// peers; a new set needs a new table. Not safe for concurrent use.
type fibTable struct {
	peers   []tunnel.Peer
	overlay map[netip.Addr]int
	static  map[netip.Prefix]bool // routed to a peer by the configuration
	best    map[netip.Prefix]bestPath
	stale   map[netip.Prefix][]fib.Route // left by the previous run, kept until a best path comes

	allowed map[wgtypes.Key]map[netip.Prefix]struct{} // learned AllowedIPs per peer
	sorted  map[wgtypes.Key][]netip.Prefix            // allowed, sorted; missing where it changed since
	tunnel  int                                       // installed routes in AllowedIPs
	gateway int                                       // installed kernel routes, stale ones too

	kernelChanged map[netip.Prefix]struct{} // prefixes whose kernel routes changed since takeKernel
	tunnelChanged bool                      // AllowedIPs changed since takeTunnel
}

// bestPath is what planning needs of a best path (bgp.Route is four times
// the size, with an AS path).
type bestPath struct {
	nextHop    netip.Addr
	originated bool
}

// where is the plan for one prefix.
type where struct {
	peer    int        // index in peers of the peer whose AllowedIPs take it; -1: none
	gateway netip.Addr // next hop of its kernel route; invalid: none
	stale   bool       // no best path: the previous run's routes, if any, stay
	skipped string     // why its best path is not installed
}

// newFIBTable plans best over peers (see planFIB). It takes best and stale
// over.
func newFIBTable(best map[netip.Prefix]bestPath, peers []tunnel.Peer, overlay map[netip.Addr]int, stale map[netip.Prefix][]fib.Route) *fibTable {
	if best == nil {
		best = map[netip.Prefix]bestPath{}
	}
	t := &fibTable{
		peers: peers, overlay: overlay, static: map[netip.Prefix]bool{},
		best: best, stale: stale,
		allowed: map[wgtypes.Key]map[netip.Prefix]struct{}{}, sorted: map[wgtypes.Key][]netip.Prefix{},
		kernelChanged: map[netip.Prefix]struct{}{},
	}
	for _, p := range peers {
		for _, a := range p.AllowedIPs {
			t.static[a] = true
		}
	}
	for p := range best {
		t.add(p, t.whereOf(p))
	}
	for p := range stale {
		if _, ok := best[p]; !ok {
			t.add(p, t.whereOf(p))
		}
	}
	return t
}

// samePeers reports whether the table was planned over these peers.
func (t *fibTable) samePeers(peers []tunnel.Peer, overlay map[netip.Addr]int) bool {
	return maps.Equal(t.overlay, overlay) && slices.EqualFunc(t.peers, peers, func(a, b tunnel.Peer) bool {
		return a.Name == b.Name && a.PublicKey == b.PublicKey && slices.Equal(a.AllowedIPs, b.AllowedIPs)
	})
}

// whereOf plans prefix p as planFIB does.
func (t *fibTable) whereOf(p netip.Prefix) where {
	r, ok := t.best[p]
	switch {
	case !ok:
		return where{peer: -1, stale: true}
	case r.originated:
		return where{peer: -1}
	case t.static[p]:
		return where{peer: -1, skipped: "routed to a peer by the configuration"}
	}
	if i, ok := t.overlay[r.nextHop]; ok {
		return where{peer: i}
	}
	if !r.nextHop.IsValid() || r.nextHop.IsUnspecified() {
		return where{peer: -1, skipped: "no next hop"}
	}
	if overlayPool.Contains(r.nextHop) {
		return where{peer: -1, skipped: noPeerNextHop}
	}
	return where{peer: -1, gateway: r.nextHop}
}

// kernelRoutes is how many kernel routes w asks for.
func (t *fibTable) kernelRoutes(p netip.Prefix, w where) int {
	switch {
	case w.gateway.IsValid():
		return 1
	case w.stale:
		return len(t.stale[p])
	}
	return 0
}

// set applies one best-path change and returns why the prefix's new best
// path is not installed, or "".
func (t *fibTable) set(ev bgp.RouteEvent) string {
	p := ev.Route.Prefix
	old := t.whereOf(p)
	if ev.Withdrawn {
		delete(t.best, p)
	} else {
		t.best[p] = bestPath{nextHop: ev.Route.NextHop, originated: ev.Route.Originated}
	}
	now := t.whereOf(p)
	if old.peer != now.peer {
		t.tunnelChanged = true
	}
	if old.gateway != now.gateway || old.stale != now.stale {
		if t.kernelRoutes(p, old) > 0 || t.kernelRoutes(p, now) > 0 {
			t.kernelChanged[p] = struct{}{}
		}
	}
	t.remove(p, old)
	t.add(p, now)
	return now.skipped
}

func (t *fibTable) add(p netip.Prefix, w where) {
	t.gateway += t.kernelRoutes(p, w)
	if w.peer < 0 {
		return
	}
	k := t.peers[w.peer].PublicKey
	if t.allowed[k] == nil {
		t.allowed[k] = map[netip.Prefix]struct{}{}
	}
	t.allowed[k][p] = struct{}{}
	delete(t.sorted, k)
	t.tunnel++
}

func (t *fibTable) remove(p netip.Prefix, w where) {
	t.gateway -= t.kernelRoutes(p, w)
	if w.peer < 0 {
		return
	}
	k := t.peers[w.peer].PublicKey
	delete(t.allowed[k], p)
	if len(t.allowed[k]) == 0 {
		delete(t.allowed, k)
	}
	delete(t.sorted, k)
	t.tunnel--
}

// dropStale forgets the previous run's routes: those no best path replaced
// leave the kernel.
func (t *fibTable) dropStale() {
	for p := range t.stale {
		if _, ok := t.best[p]; !ok {
			t.gateway -= len(t.stale[p])
			t.kernelChanged[p] = struct{}{}
		}
	}
	t.stale = nil
}

// staleCount is how many routes of the previous run are kept.
func (t *fibTable) staleCount() int {
	n := 0
	for _, rs := range t.stale {
		n += len(rs)
	}
	return n
}

// appendKernel appends the kernel routes planned for p.
func (t *fibTable) appendKernel(out []fib.Route, p netip.Prefix) []fib.Route {
	w := t.whereOf(p)
	switch {
	case w.gateway.IsValid():
		return append(out, fib.Route{Prefix: p, Gateway: w.gateway})
	case w.stale:
		return append(out, t.stale[p]...)
	}
	return out
}

// takeKernel returns the prefixes whose kernel routes changed since the
// last call and the routes now planned for them (see fib.FIB.Update).
func (t *fibTable) takeKernel() ([]netip.Prefix, []fib.Route) {
	if len(t.kernelChanged) == 0 {
		return nil, nil
	}
	prefixes := make([]netip.Prefix, 0, len(t.kernelChanged))
	var want []fib.Route
	for p := range t.kernelChanged {
		prefixes = append(prefixes, p)
		want = t.appendKernel(want, p)
	}
	clear(t.kernelChanged)
	return prefixes, want
}

// markKernel marks prefixes as changed, for the next takeKernel: their
// routes failed to install.
func (t *fibTable) markKernel(prefixes []netip.Prefix) {
	for _, p := range prefixes {
		t.kernelChanged[p] = struct{}{}
	}
}

// takeTunnel reports whether the AllowedIPs changed since the last call.
func (t *fibTable) takeTunnel() bool {
	changed := t.tunnelChanged
	t.tunnelChanged = false
	return changed
}

// kernel is every planned kernel route, sorted as planFIB sorts them.
func (t *fibTable) kernel() []fib.Route {
	out := make([]fib.Route, 0, t.gateway)
	for p := range t.best {
		out = t.appendKernel(out, p)
	}
	for p := range t.stale {
		if _, ok := t.best[p]; !ok {
			out = t.appendKernel(out, p)
		}
	}
	slices.SortFunc(out, compareRoute)
	return out
}

// allowedIPs is the learned AllowedIPs per peer, sorted, as planFIB gives
// them. The slices are shared with later calls: never modify them.
func (t *fibTable) allowedIPs() map[wgtypes.Key][]netip.Prefix {
	out := make(map[wgtypes.Key][]netip.Prefix, len(t.allowed))
	for k, set := range t.allowed {
		ps, ok := t.sorted[k]
		if !ok {
			ps = slices.SortedFunc(maps.Keys(set), comparePrefix)
			t.sorted[k] = ps
		}
		out[k] = ps
	}
	return out
}

// routes is where each learned best path went, sorted as planFIB sorts
// them, and the best paths not installed with why.
func (t *fibTable) routes() ([]installed, map[netip.Prefix]string) {
	out := make([]installed, 0, t.tunnel+t.gateway)
	skipped := map[netip.Prefix]string{}
	for p := range t.best {
		switch w := t.whereOf(p); {
		case w.peer >= 0:
			out = append(out, installed{Prefix: p, Peer: t.peers[w.peer].Name, Key: t.peers[w.peer].PublicKey})
		case w.gateway.IsValid():
			out = append(out, installed{Prefix: p, Gateway: w.gateway})
		case w.skipped != "":
			skipped[p] = w.skipped
		}
	}
	for p, rs := range t.stale {
		if _, ok := t.best[p]; !ok {
			for _, r := range rs {
				out = append(out, installed{Prefix: p, Gateway: r.Gateway, Stale: true})
			}
		}
	}
	slices.SortFunc(out, compareInstalled)
	return out, skipped
}

// groupRoutes indexes routes by prefix.
func groupRoutes(rs []fib.Route) map[netip.Prefix][]fib.Route {
	m := map[netip.Prefix][]fib.Route{}
	for _, r := range rs {
		m[r.Prefix] = append(m[r.Prefix], r)
	}
	return m
}
