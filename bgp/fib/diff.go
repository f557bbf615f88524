package fib

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// defaultMetric is the metric the kernel gives a route added without one:
// 0 for IPv4, 1024 for IPv6. fib adds its routes without one.
func defaultMetric(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1024
}

// owned reports whether fib owns kr, a route with Protocol in its table: a
// unicast route with one next hop, a gateway and a device not excluded.
// Anything else with Protocol (package tunnel's device routes, a multipath
// or blackhole route someone added by hand) is left alone.
func owned(kr kroute, exclude []string) bool {
	return kr.Unicast && !kr.Multipath && kr.Gateway.IsValid() && kr.Gateway.Is4() == kr.Prefix.Addr().Is4() &&
		kr.Dev != "" && !slices.Contains(exclude, kr.Dev)
}

// plan returns the ops that turn have, the routes fib owns in its table,
// into want, and the wanted routes refused before reaching the kernel (see
// check; a prefix wanted via two gateways is refused too). A refused route
// leaves the kernel's routes for its prefix as they are.
//
// For each wanted prefix, the owned route with the kernel's default metric
// and TOS 0 is the one kept or changed; other owned routes (other metrics or
// TOS, added by hand or by an older roamd) are deleted. Adds and changes come
// first, in prefix order, then deletes, so a prefix that moves never loses
// its route.
func plan(have []kroute, want []Route) ([]op, []*RouteError) {
	var errs []*RouteError
	keep := map[netip.Prefix]bool{}
	gws := make(map[netip.Prefix][]netip.Addr, len(want))
	for _, r := range want {
		if err := check(r); err != nil {
			errs = append(errs, &RouteError{Op: "check", Route: r, Err: err})
			if r.Prefix.IsValid() {
				keep[r.Prefix.Masked()] = true
			}
			continue
		}
		if !slices.Contains(gws[r.Prefix], r.Gateway) {
			gws[r.Prefix] = append(gws[r.Prefix], r.Gateway)
		}
	}
	prefixes := make([]netip.Prefix, 0, len(gws))
	for p, gs := range gws {
		if len(gs) > 1 {
			slices.SortFunc(gs, netip.Addr.Compare)
			errs = append(errs, &RouteError{Op: "check", Route: Route{Prefix: p},
				Err: fmt.Errorf("wanted via %d gateways (%s): want one", len(gs), joinAddrs(gs))})
			keep[p] = true
			continue
		}
		if !keep[p] {
			prefixes = append(prefixes, p)
		}
	}
	slices.SortFunc(prefixes, netip.Prefix.Compare)
	slices.SortFunc(errs, func(a, b *RouteError) int {
		return cmp.Or(a.Route.Prefix.Compare(b.Route.Prefix), a.Route.Gateway.Compare(b.Route.Gateway))
	})

	// cur is the route kept or changed for each prefix; the other owned
	// routes are stale.
	cur := make(map[netip.Prefix]kroute, len(have))
	var stale []kroute
	for _, kr := range have {
		if _, dup := cur[kr.Prefix]; dup || kr.Metric != defaultMetric(kr.Prefix) || kr.TOS != 0 {
			stale = append(stale, kr)
			continue
		}
		cur[kr.Prefix] = kr
	}

	var ops []op
	for _, p := range prefixes {
		r := kroute{Prefix: p, Gateway: gws[p][0], Unicast: true}
		c, ok := cur[p]
		delete(cur, p)
		switch {
		case !ok:
			ops = append(ops, op{Kind: opAdd, Route: r})
		case c.Gateway != r.Gateway:
			ops = append(ops, op{Kind: opChange, Route: r, Old: c})
		}
	}
	for _, kr := range cur {
		stale = append(stale, kr)
	}
	slices.SortFunc(stale, compareKroute)
	for _, kr := range stale {
		if !keep[kr.Prefix] {
			ops = append(ops, op{Kind: opDelete, Route: kr})
		}
	}
	return ops, errs
}

func compareKroute(a, b kroute) int {
	return cmp.Or(
		a.Prefix.Compare(b.Prefix),
		cmp.Compare(a.Metric, b.Metric),
		cmp.Compare(a.TOS, b.TOS),
		a.Gateway.Compare(b.Gateway),
		cmp.Compare(a.Dev, b.Dev),
	)
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
