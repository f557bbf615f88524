package mobility

import (
	"cmp"
	"net/netip"
	"slices"
)

// Snapshot is the underlay as roamd cares about it, at one moment. A
// Snapshot handed out by a Watcher is shared: treat its slices as read-only.
type Snapshot struct {
	Links []Link // sorted by Name; ignored interfaces left out
	Addrs []Addr // sorted by Iface, then Prefix; global unicast only (no link-local, no loopback); ignored interfaces left out
	Paths []Path // one per target (Config.Targets), sorted by Target
}

// Link is one network interface.
type Link struct {
	Name    string
	Index   int
	Up      bool // administratively up
	Carrier bool // operationally up: the lower layer is up (a cable, an associated Wi-Fi)
}

// usable reports whether the link can carry traffic: up and with carrier.
func (l Link) usable() bool { return l.Up && l.Carrier }

// Addr is an address on an interface.
type Addr struct {
	Iface  string
	Prefix netip.Prefix // the address with its prefix length, as configured: 192.0.2.2/26
}

func (a Addr) String() string { return a.Iface + " " + a.Prefix.String() }

// Path is how the kernel would reach a target now (a route lookup, like
// `ip route get`). An unreachable target has only Target set.
type Path struct {
	Target    netip.Addr
	Iface     string     // outgoing interface
	Src       netip.Addr // source address the kernel would pick
	Gateway   netip.Addr // next hop; zero when the target is on-link
	Reachable bool
}

// String describes how the path leaves, without its target:
// "eth1 192.0.2.2 via 192.0.2.1", "unreachable", or "untracked" for the zero
// Path (a target that was not tracked).
func (p Path) String() string {
	switch {
	case !p.Target.IsValid():
		return "untracked"
	case !p.Reachable:
		return "unreachable"
	}
	s := p.Iface
	if p.Src.IsValid() {
		s += " " + p.Src.String()
	}
	if p.Gateway.IsValid() {
		s += " via " + p.Gateway.String()
	}
	return s
}

// normalize turns what the OS reported into a Snapshot: ignored interfaces
// and addresses that are not global unicast left out, duplicates dropped,
// everything sorted, IPv4 addresses unmapped, unreachable paths reduced to
// their target. It does not change s's slices.
func normalize(s Snapshot, ignore func(string) bool) Snapshot {
	var out Snapshot
	for _, l := range s.Links {
		if !ignore(l.Name) {
			out.Links = append(out.Links, l)
		}
	}
	slices.SortFunc(out.Links, compareLinks)
	out.Links = slices.CompactFunc(out.Links, func(a, b Link) bool { return a.Name == b.Name })

	for _, a := range s.Addrs {
		a.Prefix = netip.PrefixFrom(a.Prefix.Addr().Unmap(), a.Prefix.Bits())
		if ignore(a.Iface) || !a.Prefix.IsValid() || !a.Prefix.Addr().IsGlobalUnicast() {
			continue
		}
		out.Addrs = append(out.Addrs, a)
	}
	slices.SortFunc(out.Addrs, compareAddrs)
	out.Addrs = slices.Compact(out.Addrs)

	for _, p := range s.Paths {
		p = normalizePath(p)
		if p.Target.IsValid() {
			out.Paths = append(out.Paths, p)
		}
	}
	slices.SortFunc(out.Paths, func(a, b Path) int { return a.Target.Compare(b.Target) })
	out.Paths = slices.CompactFunc(out.Paths, func(a, b Path) bool { return a.Target == b.Target })
	return out
}

func normalizePath(p Path) Path {
	p.Target = p.Target.Unmap()
	if !p.Reachable {
		return Path{Target: p.Target}
	}
	p.Src = p.Src.Unmap()
	p.Gateway = p.Gateway.Unmap()
	return p
}

func compareLinks(a, b Link) int {
	return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Index, b.Index))
}

func compareAddrs(a, b Addr) int {
	return cmp.Or(
		cmp.Compare(a.Iface, b.Iface),
		a.Prefix.Addr().Compare(b.Prefix.Addr()),
		cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
	)
}

// cleanTargets returns the valid addresses of ts, unmapped, sorted and
// without duplicates, in a new slice.
func cleanTargets(ts []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(ts))
	for _, t := range ts {
		if t.IsValid() {
			out = append(out, t.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
