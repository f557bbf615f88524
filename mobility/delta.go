package mobility

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// Change is what differs between two snapshots. Every slice is sorted.
type Change struct {
	AddrsAdded, AddrsRemoved []Addr
	// LinksUp and LinksDown name the links that became usable (admin up
	// with carrier) or stopped being usable; a link that disappears while
	// usable is down, one that appears usable is up.
	LinksUp, LinksDown []string
	// PathsChanged holds, by target, every path whose interface, source,
	// gateway or reachability changed, and every path whose source address
	// was removed even if the kernel still reports it. A target that starts
	// (stops) being tracked has the zero Path as Old (New).
	PathsChanged []PathChange
}

// PathChange is one target's path before and after.
type PathChange struct{ Old, New Path }

// Target is the target of the change.
func (pc PathChange) Target() netip.Addr {
	if pc.New.Target.IsValid() {
		return pc.New.Target
	}
	return pc.Old.Target
}

// Delta returns what differs from old to new. It is pure: the order of the
// snapshots' slices does not matter and neither snapshot is changed.
func Delta(old, new Snapshot) Change {
	var c Change

	oldAddrs, newAddrs := addrSet(old.Addrs), addrSet(new.Addrs)
	for a := range newAddrs {
		if !oldAddrs[a] {
			c.AddrsAdded = append(c.AddrsAdded, a)
		}
	}
	for a := range oldAddrs {
		if !newAddrs[a] {
			c.AddrsRemoved = append(c.AddrsRemoved, a)
		}
	}
	slices.SortFunc(c.AddrsAdded, compareAddrs)
	slices.SortFunc(c.AddrsRemoved, compareAddrs)

	oldUsable, newUsable := usableLinks(old.Links), usableLinks(new.Links)
	for name := range newUsable {
		if !oldUsable[name] {
			c.LinksUp = append(c.LinksUp, name)
		}
	}
	for name := range oldUsable {
		if !newUsable[name] {
			c.LinksDown = append(c.LinksDown, name)
		}
	}
	slices.Sort(c.LinksUp)
	slices.Sort(c.LinksDown)

	// An address is gone when it is on no interface any more (one that
	// moved to another interface can still be used as a source).
	gone := make(map[netip.Addr]bool)
	for a := range oldAddrs {
		gone[a.Prefix.Addr()] = true
	}
	for a := range newAddrs {
		delete(gone, a.Prefix.Addr())
	}
	oldPaths, newPaths := pathMap(old.Paths), pathMap(new.Paths)
	for t, np := range newPaths {
		op, tracked := oldPaths[t]
		if !tracked || op != np || (op.Reachable && gone[op.Src]) {
			c.PathsChanged = append(c.PathsChanged, PathChange{Old: op, New: np})
		}
	}
	for t, op := range oldPaths {
		if _, tracked := newPaths[t]; !tracked {
			c.PathsChanged = append(c.PathsChanged, PathChange{Old: op})
		}
	}
	slices.SortFunc(c.PathsChanged, func(a, b PathChange) int { return a.Target().Compare(b.Target()) })
	return c
}

func addrSet(as []Addr) map[Addr]bool {
	m := make(map[Addr]bool, len(as))
	for _, a := range as {
		a.Prefix = netip.PrefixFrom(a.Prefix.Addr().Unmap(), a.Prefix.Bits())
		m[a] = true
	}
	return m
}

// usableLinks returns the names of the usable links of ls. A name listed
// twice is usable if any of its entries is.
func usableLinks(ls []Link) map[string]bool {
	m := make(map[string]bool, len(ls))
	for _, l := range ls {
		if l.usable() {
			m[l.Name] = true
		}
	}
	return m
}

// pathMap returns ps by target; of a target listed twice, the greatest
// path wins, so that the result does not depend on the order of ps.
func pathMap(ps []Path) map[netip.Addr]Path {
	m := make(map[netip.Addr]Path, len(ps))
	for _, p := range ps {
		p = normalizePath(p)
		if !p.Target.IsValid() {
			continue
		}
		if q, ok := m[p.Target]; !ok || comparePaths(p, q) > 0 {
			m[p.Target] = p
		}
	}
	return m
}

func comparePaths(a, b Path) int {
	return cmp.Or(
		a.Target.Compare(b.Target),
		cmp.Compare(a.Iface, b.Iface),
		a.Src.Compare(b.Src),
		a.Gateway.Compare(b.Gateway),
		compareBools(a.Reachable, b.Reachable),
	)
}

func compareBools(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool {
	return len(c.AddrsAdded) == 0 && len(c.AddrsRemoved) == 0 &&
		len(c.LinksUp) == 0 && len(c.LinksDown) == 0 && len(c.PathsChanged) == 0
}

// Handover reports whether the change moves traffic: the path to a target
// tracked before and after changed (interface, source address, gateway or
// reachability), or an address the old path used was removed. A new address
// on an unused interface, a link that comes up without taking a path, or a
// target that starts or stops being tracked is not a handover (but still a
// Change: ICE gets a new host candidate).
func (c Change) Handover() bool {
	for _, pc := range c.PathsChanged {
		if pc.Old.Target.IsValid() && pc.New.Target.IsValid() {
			return true
		}
	}
	return false
}

// String is the change on one line for logs:
// "eth1 down; path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> eth2 192.0.2.66 via 192.0.2.65".
// Addresses read as "eth1 -192.0.2.2/26" (removed) and "eth1 +192.0.2.3/26"
// (added).
func (c Change) String() string {
	if c.Empty() {
		return "no change"
	}
	var parts []string
	for _, name := range c.LinksDown {
		parts = append(parts, name+" down")
	}
	for _, name := range c.LinksUp {
		parts = append(parts, name+" up")
	}
	for _, a := range c.AddrsRemoved {
		parts = append(parts, a.Iface+" -"+a.Prefix.String())
	}
	for _, a := range c.AddrsAdded {
		parts = append(parts, a.Iface+" +"+a.Prefix.String())
	}
	for _, pc := range c.PathsChanged {
		s := "path " + pc.Target().String() + ": " + pc.Old.String()
		if pc.Old == pc.New {
			s += ", source removed"
		} else {
			s += " -> " + pc.New.String()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
