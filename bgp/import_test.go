package bgp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// importProbes are prefixes R1 (roam) and X (external) announce to H to
// compare H's real import policy with rejectReason.
var importProbes = []string{
	"0.0.0.0/0", "0.0.0.0/8", "127.1.0.0/16", "169.254.1.0/24", "224.1.0.0/16", "240.0.0.0/4",
	"100.64.3.0/24", "100.64.0.0/10", podH.String(), "10.244.20.0/24", "198.51.100.0/24",
	"::/0", "fe80::/64", "ff02::/16", "::1/128", "2001:db8:99::/48",
}

// TestImportPolicyAgreesWithRejectReason: every probe is in H's RIB exactly
// when rejectReason accepts it, and each rejection is logged once with its
// rule.
func TestImportPolicyAgreesWithRejectReason(t *testing.T) {
	for _, acceptDefault := range []bool{false, true} {
		t.Run(fmt.Sprintf("AcceptDefault=%v", acceptDefault), func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			tp := newHubTopology(t, false, acceptDefault)
			senders := []struct {
				n      *node
				addr   netip.Addr
				kind   NeighborKind
				nh, v6 netip.Addr
			}{{tp.r1, addrR1, KindRoam, ovlR1, ovlR1v6}, {tp.x, addrX, KindExternal, addrX, nhX6}}
			for _, snd := range senders {
				for _, s := range importProbes {
					p := netip.MustParsePrefix(s)
					nh := snd.nh
					if !p.Addr().Is4() {
						nh = snd.v6
					}
					snd.n.announce(t, p, nh)
				}
			}
			rules := tp.h.s.policy.rules
			for _, snd := range senders {
				want := uint64(len(importProbes) + 1) // and its own pod or route
				eventually(t, 10*time.Second, func() string {
					if n := tp.h.neighbor(t, snd.addr); n.Received < want {
						return fmt.Sprintf("H received %d prefixes from %s, want %d", n.Received, snd.addr, want)
					}
					return ""
				})
				accepted := uint64(1)
				for _, s := range importProbes {
					p := netip.MustParsePrefix(s)
					rule := rules.rejectReason(p, snd.kind, p == podH)
					if rule == "" {
						accepted++
					}
					_, inRIB := tp.h.pathFrom(t, p, snd.addr)
					if inRIB != (rule == "") {
						t.Errorf("%s from %s (%s): in H's RIB = %v, but rejectReason = %q", p, snd.addr, snd.kind, inRIB, rule)
					}
					// Logged on the adj-RIB-in watcher's goroutine, which may
					// lag behind the RIB.
					eventually(t, 5*time.Second, func() string {
						logs := tp.h.log.find("bgp: rejected route", map[string]string{"neighbor": snd.addr.String(), "prefix": p.String()})
						switch {
						case rule == "" && len(logs) != 0:
							return fmt.Sprintf("%s from %s accepted but logged as rejected: %+v", p, snd.addr, logs)
						case rule != "" && (len(logs) != 1 || logs[0].attrs["rule"] != rule || logs[0].attrs["kind"] != snd.kind.String() || logs[0].level != slogWarn):
							return fmt.Sprintf("%s from %s rejected (%s): log lines %+v, want one Warn with rule=%s kind=%s", p, snd.addr, rule, logs, rule, snd.kind)
						}
						return ""
					})
				}
				eventually(t, 5*time.Second, func() string {
					if n := tp.h.neighbor(t, snd.addr); n.Accepted != accepted {
						return fmt.Sprintf("H's view of %s: %d accepted, want %d (after import policy)", snd.addr, n.Accepted, accepted)
					}
					return ""
				})
			}
			// The same prefix sent again is not logged again; after a
			// withdrawal it is.
			martian := netip.MustParsePrefix("127.1.0.0/16")
			count := func() int {
				return len(tp.h.log.find("bgp: rejected route", map[string]string{"neighbor": addrR1.String(), "prefix": martian.String()}))
			}
			// A new rejected prefix sent after it marks that the watcher got
			// this far: it sees R1's routes in order.
			logged := func(p netip.Prefix) func() string {
				return func() string {
					if len(tp.h.log.find("bgp: rejected route", map[string]string{"neighbor": addrR1.String(), "prefix": p.String()})) == 0 {
						return fmt.Sprintf("%s from R1 not logged yet", p)
					}
					return ""
				}
			}
			tp.r1.announce(t, martian, ovlR2)
			mark := netip.MustParsePrefix("127.2.0.0/16")
			tp.r1.announce(t, mark, ovlR2)
			eventually(t, 5*time.Second, logged(mark))
			if n := count(); n != 1 {
				t.Errorf("%s sent again: %d log lines, want still 1", martian, n)
			}
			if err := tp.r1.s.Withdraw(t.Context(), martian); err != nil {
				t.Fatal(err)
			}
			tp.r1.announce(t, martian, ovlR1)
			eventually(t, 5*time.Second, func() string {
				if n := count(); n != 2 {
					return fmt.Sprintf("%s withdrawn and sent again: %d log lines, want 2", martian, n)
				}
				return ""
			})
			tp.stopAll(t)
			checkNoLeaks(t, before)
		})
	}
}

// TestOwnPrefixFollowsAnnounce is a regression test: GoBGP does not
// re-evaluate routes it already has when the originated set changes, so a
// neighbour's path for a prefix H stopped originating stayed rejected (and
// one for a prefix H started originating stayed accepted) until the
// neighbour happened to send it again.
func TestOwnPrefixFollowsAnnounce(t *testing.T) {
	before := goleak.IgnoreCurrent()
	tp := newHubTopology(t, false, false)
	// R1 also announces H's prefix: rejected while H originates it.
	tp.r1.announce(t, podH, ovlR1)
	tp.h.waitRoute(t, podR1, addrR1, ovlR1)
	eventually(t, 10*time.Second, func() string {
		if n := tp.h.neighbor(t, addrR1); n.Received != 2 || n.Accepted != 1 {
			return fmt.Sprintf("H's view of R1: %+v, want 2 received, 1 accepted", n)
		}
		return ""
	})
	if _, ok := tp.h.pathFrom(t, podH, addrR1); ok {
		t.Fatalf("H accepted R1's path for its own %s", podH)
	}
	// H stops originating it: R1's path is used at once, without R1 sending
	// anything.
	if err := tp.h.s.Withdraw(t.Context(), podH); err != nil {
		t.Fatal(err)
	}
	r := tp.h.waitRoute(t, podH, addrR1, ovlR1)
	if !r.Best {
		t.Errorf("R1's path for %s after H withdrew it: %+v, want best", podH, r)
	}
	eventually(t, 5*time.Second, func() string {
		if ev, ok := tp.h.events.get(podH); !ok || ev.Withdrawn || ev.Route.From != addrR1 {
			return fmt.Sprintf("H's last update for %s = %+v, want the path from R1", podH, ev)
		}
		return ""
	})
	// H starts originating R1's prefix: R1's path leaves H's RIB.
	tp.h.announce(t, podR1, ovlH)
	eventually(t, 5*time.Second, func() string {
		rs := pathsFor(t, tp.h.s, podR1)
		if len(rs) != 1 || !rs[0].Originated {
			return fmt.Sprintf("H's paths for %s = %+v, want only its own", podR1, rs)
		}
		return ""
	})
	tp.stopAll(t)
	checkNoLeaks(t, before)
}
