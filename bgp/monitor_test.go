package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestPrefixLimit: a neighbour that sends more prefixes (per family) than
// its limit is torn down, stays down, and H says so with the limit.
func TestPrefixLimit(t *testing.T) {
	// With graceful restart on, GoBGP may record the teardown as a read
	// failure (and the routes as stale): the routes must go all the same.
	for _, gr := range []bool{false, true} {
		t.Run(fmt.Sprintf("graceful restart %v", gr), func(t *testing.T) { testPrefixLimit(t, gr) })
	}
}

func testPrefixLimit(t *testing.T, gr bool) {
	before := goleak.IgnoreCurrent()
	portH := freePort(t)
	h := newNode(t, "H", Config{
		ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: portH, ListenAddresses: []netip.Addr{addrA},
		DisableGracefulRestart: !gr, MaxPrefixes: 100,
		Neighbors: []Neighbor{{Address: addrB, ASN: 65002, Kind: KindExternal, Passive: true, MaxPrefixes: 3, Description: "upstream"}},
	})
	r := newNode(t, "R", Config{
		ASN: 65002, AllowPublicASN: true, RouterID: netip.MustParseAddr("10.0.0.2"), ListenPort: -1, DisableGracefulRestart: true,
		Neighbors: []Neighbor{{Address: addrA, Port: portH, ASN: asnA, LocalAddress: addrB}},
	})
	p := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i * 16)}), 28)
	}
	for i := range 3 {
		r.announce(t, p(i), addrB)
	}
	r.announce(t, netip.MustParsePrefix("2001:db8:5::/48"), netip.MustParseAddr("2001:db8::2")) // other family, own count
	startNodes(t, h, r)
	h.waitState(t, addrB, true)
	eventually(t, 10*time.Second, func() string {
		if n := h.neighbor(t, addrB); n.Accepted != 4 {
			return fmt.Sprintf("H accepted %d prefixes from R, want 4 (3 IPv4 at the limit, 1 IPv6)", n.Accepted)
		}
		return ""
	})
	if got := h.log.find("bgp: neighbor sent more prefixes than its limit; its routes are dropped and the session stays down until the neighbor is enabled again", nil); len(got) != 0 {
		t.Fatalf("limit reported at the limit: %+v", got)
	}

	r.announce(t, p(3), addrB)
	h.waitState(t, addrB, false)
	eventually(t, 5*time.Second, func() string { // logged on the watcher's goroutine
		got := h.log.find("bgp: neighbor sent more prefixes than its limit; its routes are dropped and the session stays down until the neighbor is enabled again",
			map[string]string{"neighbor": addrB.String(), "limit": "3", "kind": "external", "description": "upstream"})
		if len(got) != 1 || got[0].level != slogWarn {
			return fmt.Sprintf("limit log lines = %+v, want one Warn naming the neighbour and limit 3", got)
		}
		down := h.log.find("bgp: neighbor state", map[string]string{"neighbor": addrB.String(), "state": "established -> idle"})
		if len(down) != 1 || (!gr && !strings.Contains(down[0].attrs["reason"], "maximum number of prefixes reached")) {
			return fmt.Sprintf("state log lines = %+v, want established -> idle with the prefix limit as reason", down)
		}
		return ""
	})
	time.Sleep(3 * time.Second) // idle hold is 1s, R retries every 1-2s
	if n := h.neighbor(t, addrB); n.Established() || n.Accepted != 0 {
		t.Errorf("H's view of R 3s after the limit: %+v, want down with nothing accepted", n)
	}
	for _, n := range []*node{r, h} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: %v", n.name, err)
		}
	}
	checkNoLeaks(t, before)
}

// TestNeighborStateLog: each state change is logged at Info as old -> new
// with the neighbour's address, kind and description.
func TestNeighborStateLog(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a, newB := grPair(t, false)
	b := newB("B", false)
	startNodes(t, a, b)
	a.waitState(t, addrB, true)
	for _, c := range []struct {
		n     *node
		addr  netip.Addr
		desc  string
		steps []string
	}{
		{a, addrB, "B", []string{"idle -> active", "active -> opensent", "opensent -> openconfirm", "openconfirm -> established"}},
		{b, addrA, "A", []string{"idle -> active", "active -> opensent", "opensent -> openconfirm", "openconfirm -> established"}},
	} {
		eventually(t, 5*time.Second, func() string {
			var got []string
			for _, rec := range c.n.log.find("bgp: neighbor state", map[string]string{"neighbor": c.addr.String(), "kind": "roam", "description": c.desc}) {
				if rec.level != slogInfo {
					return fmt.Sprintf("state logged at %v", rec.level)
				}
				got = append(got, rec.attrs["state"])
			}
			if strings.Join(got, ", ") != strings.Join(c.steps, ", ") {
				return fmt.Sprintf("%s logged states %q, want %q", c.n.name, got, c.steps)
			}
			return ""
		})
	}
	for _, n := range []*node{b, a} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: %v", n.name, err)
		}
	}
	checkNoLeaks(t, before)
}
