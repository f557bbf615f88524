package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const (
	asnH  = 4200000010
	asnR1 = 4200000011
	asnR2 = 4200000012
	asnX  = 65004 // an external router with a public ASN
)

var (
	addrH   = netip.MustParseAddr("127.0.0.1")
	addrR1  = netip.MustParseAddr("127.0.0.2")
	addrR2  = netip.MustParseAddr("127.0.0.3")
	addrX   = netip.MustParseAddr("127.0.0.4")
	podH    = netip.MustParsePrefix("10.244.10.0/24")
	podR1   = netip.MustParsePrefix("10.244.11.0/24")
	podR2   = netip.MustParsePrefix("10.244.12.0/24")
	extX    = netip.MustParsePrefix("192.0.2.0/24")
	ovlH    = netip.MustParseAddr("100.64.0.10")
	ovlR1   = netip.MustParseAddr("100.64.0.11")
	ovlR2   = netip.MustParseAddr("100.64.0.12")
	ovlR1v6 = netip.MustParseAddr("fd00::11")
	nhX6    = netip.MustParseAddr("2001:db8:4::1")
	pods    = netip.MustParsePrefix("10.244.0.0/16")
)

// hubTopology is H with two roam neighbours R1 and R2 and one external
// neighbour X, all on loopback; H listens, the others dial it.
type hubTopology struct {
	h, r1, r2, x *node
}

// H has graceful restart off, so no session negotiates it: when a speaker
// stops, its neighbours flush its routes instead of marking them stale in
// place, which GoBGP v3.37.0 does while its watchers may still be reading
// the same paths (see syncedWith; TestGracefulRestart covers restarts).
func newHubTopology(t *testing.T, transit, acceptDefault bool) *hubTopology {
	portH := freePort(t)
	h := newNode(t, "H", Config{
		ASN: asnH, RouterID: netip.MustParseAddr("10.0.0.10"), ListenPort: portH, DisableGracefulRestart: true,
		ListenAddresses: []netip.Addr{addrH},
		Transit:         transit, AcceptDefault: acceptDefault,
		InternalPrefixes: []netip.Prefix{pods},
		Neighbors: []Neighbor{
			{Address: addrR1, ASN: asnR1, Passive: true, Description: "R1"},
			{Address: addrR2, ASN: asnR2, Passive: true, Description: "R2"},
			{Address: addrX, ASN: asnX, Kind: KindExternal, Passive: true, Description: "X"},
		},
	})
	dialer := func(name string, asn uint32, id string, self netip.Addr, cfg Config) *node {
		cfg.ASN, cfg.RouterID, cfg.ListenPort = asn, netip.MustParseAddr(id), -1
		cfg.Neighbors = []Neighbor{{Address: addrH, Port: portH, ASN: asnH, LocalAddress: self, Description: "H"}}
		return newNode(t, name, cfg)
	}
	tp := &hubTopology{
		h:  h,
		r1: dialer("R1", asnR1, "10.0.0.11", addrR1, Config{}),
		r2: dialer("R2", asnR2, "10.0.0.12", addrR2, Config{}),
		x:  dialer("X", asnX, "10.0.0.4", addrX, Config{AllowPublicASN: true}),
	}
	tp.h.announce(t, podH, ovlH)
	tp.r1.announce(t, podR1, ovlR1)
	tp.r2.announce(t, podR2, ovlR2)
	tp.x.announce(t, extX, addrX)
	startNodes(t, tp.h, tp.r1, tp.r2, tp.x)
	tp.h.waitEstablished(t, addrR1, addrR2, addrX)
	return tp
}

func (tp *hubTopology) stopAll(t *testing.T) {
	for _, n := range []*node{tp.x, tp.r2, tp.r1, tp.h} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: Run returned %v", n.name, err)
		}
	}
}

func advertised(t *testing.T, n *node, to netip.Addr) []string {
	t.Helper()
	rs, err := n.s.Advertised(t.Context(), to)
	if err != nil {
		t.Fatal(err)
	}
	return prefixes(rs)
}

func strs(ps ...netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

func TestExportTransitHub(t *testing.T) {
	before := goleak.IgnoreCurrent()
	tp := newHubTopology(t, true, false)

	t.Run("external neighbour gets next-hop-self", func(t *testing.T) {
		// H's own prefix reaches X with H's address on that session, not
		// the overlay next hop H announced.
		r := tp.x.waitRoute(t, podH, addrH, addrH)
		if !slices.Equal(r.ASPath, []uint32{asnH}) {
			t.Errorf("X's path for %s has AS path %v, want [%d]", podH, r.ASPath, asnH)
		}
	})
	t.Run("roam neighbour keeps the announced next hop", func(t *testing.T) {
		tp.r1.waitRoute(t, podH, addrH, ovlH)
		tp.r2.waitRoute(t, podH, addrH, ovlH)
	})
	t.Run("roam routes transit the hub to roam neighbours", func(t *testing.T) {
		r := tp.r1.waitRoute(t, podR2, addrH, addrH)
		if !slices.Equal(r.ASPath, []uint32{asnH, asnR2}) {
			t.Errorf("R1's path for %s has AS path %v, want [H R2]", podR2, r.ASPath)
		}
		tp.r2.waitRoute(t, podR1, addrH, addrH)
	})
	t.Run("roam routes transit the hub to external neighbours", func(t *testing.T) {
		tp.x.waitRoute(t, podR1, addrH, addrH)
		tp.x.waitRoute(t, podR2, addrH, addrH)
	})
	t.Run("external routes transit the hub to roam neighbours", func(t *testing.T) {
		r := tp.r1.waitRoute(t, extX, addrH, addrH)
		if !slices.Equal(r.ASPath, []uint32{asnH, asnX}) {
			t.Errorf("R1's path for %s has AS path %v, want [H X]", extX, r.ASPath)
		}
	})
	t.Run("adj-RIB-out", func(t *testing.T) {
		eventually(t, 5*time.Second, func() string {
			toX, toR1 := advertised(t, tp.h, addrX), advertised(t, tp.h, addrR1)
			if want := strs(podH, podR1, podR2); !slices.Equal(toX, want) {
				return fmt.Sprintf("H advertises %v to X, want %v (never X's own route back)", toX, want)
			}
			if want := strs(podH, podR2, extX); !slices.Equal(toR1, want) {
				return fmt.Sprintf("H advertises %v to R1, want %v", toR1, want)
			}
			return ""
		})
		eventually(t, 5*time.Second, func() string {
			if n := tp.h.neighbor(t, addrX); n.Advertised != 3 || n.Kind != KindExternal || n.Accepted != 1 {
				return fmt.Sprintf("H's view of X = %+v, want external, 3 advertised, 1 accepted", n)
			}
			return ""
		})
		if n := tp.h.neighbor(t, addrR1); n.Kind != KindRoam {
			t.Errorf("H's view of R1 = %+v, want kind roam", n)
		}
	})
	t.Run("source tags never leave the hub", func(t *testing.T) {
		if lc := tp.h.largeCommunities(t, podR1); !slices.Equal(lc, []string{tagRoam(asnH)}) {
			t.Errorf("H's path for %s carries %v, want only the roam-learned tag", podR1, lc)
		}
		if lc := tp.h.largeCommunities(t, extX); !slices.Equal(lc, []string{tagExternal(asnH)}) {
			t.Errorf("H's path for %s carries %v, want only the external-learned tag", extX, lc)
		}
		// Each receiver tags with its own ASN; none carries H's.
		for _, c := range []struct {
			n *node
			p netip.Prefix
		}{{tp.r1, podR2}, {tp.r1, extX}, {tp.x, podR1}} {
			lc := c.n.largeCommunities(t, c.p)
			if slices.Contains(lc, tagRoam(asnH)) || slices.Contains(lc, tagExternal(asnH)) || len(lc) != 1 {
				t.Errorf("%s's path for %s carries %v, want only its own tag", c.n.name, c.p, lc)
			}
		}
	})
	tp.stopAll(t)
	checkNoLeaks(t, before)
}

func TestExportNonTransit(t *testing.T) {
	before := goleak.IgnoreCurrent()
	tp := newHubTopology(t, false, false)
	tp.x.waitRoute(t, podH, addrH, addrH)
	tp.r1.waitRoute(t, podH, addrH, ovlH)
	tp.r2.waitRoute(t, podH, addrH, ovlH)
	// H learned everything...
	for _, c := range []struct {
		p    netip.Prefix
		from netip.Addr
	}{{podR1, addrR1}, {podR2, addrR2}, {extX, addrX}} {
		eventually(t, 10*time.Second, func() string {
			if _, ok := tp.h.pathFrom(t, c.p, c.from); !ok {
				return fmt.Sprintf("H has not learned %s from %s", c.p, c.from)
			}
			return ""
		})
	}
	// ...and exports none of it.
	for _, to := range []netip.Addr{addrR1, addrR2, addrX} {
		if got, want := advertised(t, tp.h, to), strs(podH); !slices.Equal(got, want) {
			t.Errorf("non-transit H advertises %v to %s, want only its own %v", got, to, want)
		}
	}
	for _, c := range []struct {
		n *node
		p netip.Prefix
	}{{tp.r1, podR2}, {tp.r1, extX}, {tp.r2, podR1}, {tp.x, podR1}} {
		if rs := pathsFor(t, c.n.s, c.p); len(rs) != 0 {
			t.Errorf("%s learned %s through non-transit H: %+v", c.n.name, c.p, rs)
		}
	}
	tp.stopAll(t)
	checkNoLeaks(t, before)
}
