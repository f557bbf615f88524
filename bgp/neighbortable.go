package bgp

import (
	"net/netip"
	"slices"
	"sync/atomic"
)

// neighborTable is the configured neighbours by address. Writers (New,
// SetNeighbors, under Speaker.nbrMu) replace the map whole; readers, among
// them GoBGP's watcher goroutines for every route received, load it without
// a lock.
type neighborTable struct {
	m atomic.Pointer[map[netip.Addr]Neighbor]
}

func newNeighborTable(ns []Neighbor) *neighborTable {
	t := &neighborTable{}
	t.set(ns)
	return t
}

// get returns the neighbour configured at addr.
func (t *neighborTable) get(addr netip.Addr) (Neighbor, bool) {
	n, ok := (*t.m.Load())[addr]
	return n, ok
}

// list returns the neighbours sorted by address.
func (t *neighborTable) list() []Neighbor {
	m := *t.m.Load()
	out := make([]Neighbor, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sortNeighbors(out)
	return out
}

func (t *neighborTable) len() int { return len(*t.m.Load()) }

// set replaces the table with ns.
func (t *neighborTable) set(ns []Neighbor) {
	m := make(map[netip.Addr]Neighbor, len(ns))
	for _, n := range ns {
		m[n.Address] = n
	}
	t.m.Store(&m)
}

// put adds or replaces one neighbour.
func (t *neighborTable) put(n Neighbor) {
	m := make(map[netip.Addr]Neighbor, t.len()+1)
	for a, x := range *t.m.Load() {
		m[a] = x
	}
	m[n.Address] = n
	t.m.Store(&m)
}

// remove deletes the neighbour at addr.
func (t *neighborTable) remove(addr netip.Addr) {
	m := make(map[netip.Addr]Neighbor, t.len())
	for a, x := range *t.m.Load() {
		if a != addr {
			m[a] = x
		}
	}
	t.m.Store(&m)
}

func sortNeighbors(ns []Neighbor) {
	slices.SortFunc(ns, func(a, b Neighbor) int { return a.Address.Compare(b.Address) })
}
