package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/goleak"
)

var (
	addrA = netip.MustParseAddr("127.0.0.1")
	addrB = netip.MustParseAddr("127.0.0.2")
	podGR = netip.MustParsePrefix("10.244.2.0/24")
	ovlB  = netip.MustParseAddr("100.64.0.2")
)

// grPair returns A (listening, B passive) and a constructor for B, which
// dials A from 127.0.0.2 and announces podGR.
func grPair(t *testing.T, bGR bool) (a *node, newB func(name string, restarting bool) *node) {
	portA := freePort(t)
	a = newNode(t, "A", Config{
		ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: portA, ListenAddresses: []netip.Addr{addrA},
		Neighbors: []Neighbor{{Address: addrB, ASN: asnB, Passive: true, Description: "B"}},
	})
	a.announce(t, podA4, nhA4)
	newB = func(name string, restarting bool) *node {
		b := newNode(t, name, Config{
			ASN: asnB, RouterID: netip.MustParseAddr("10.0.0.2"), ListenPort: -1,
			DisableGracefulRestart: !bGR, Restarting: restarting,
			Neighbors: []Neighbor{{Address: addrA, Port: portA, ASN: asnA, LocalAddress: addrB, Description: "A"}},
		})
		b.announce(t, podGR, ovlB)
		return b
	}
	return a, newB
}

// rawBest records every best-path event of s's GoBGP server for prefix p,
// before Updates coalesces them.
type rawBest struct {
	mu     sync.Mutex
	events []RouteEvent
}

func watchRawBest(t *testing.T, n *node, p netip.Prefix) (rb *rawBest, stop func()) {
	srv, err := n.s.server()
	if err != nil {
		t.Fatal(err)
	}
	rb = &rawBest{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err = srv.WatchEvent(ctx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST}},
	}}, syncedWith(srv, func(r *api.WatchEventResponse) {
		for _, path := range r.GetTable().GetPaths() {
			rt, err := routeFromPath(path)
			if err != nil || rt.Prefix != p {
				continue
			}
			rb.mu.Lock()
			rb.events = append(rb.events, RouteEvent{Route: rt, Withdrawn: path.IsWithdraw})
			rb.mu.Unlock()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	return rb, cancel
}

func (rb *rawBest) withdrawals() int {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	n := 0
	for _, ev := range rb.events {
		if ev.Withdrawn {
			n++
		}
	}
	return n
}

// waitState polls only n's neighbour list (never its RIB: GoBGP v3.37.0's
// ListPath reads paths outside its main loop while graceful restart marks
// them stale and a reconnecting session rewrites their source, which the
// race detector reports) until neighbour addr is established or not.
func (n *node) waitState(t *testing.T, addr netip.Addr, up bool) {
	t.Helper()
	eventually(t, 20*time.Second, func() string {
		if st := n.neighbor(t, addr); st.Established() != up {
			return fmt.Sprintf("%s's neighbour %s is %s, want established=%v", n.name, addr, st.State, up)
		}
		return ""
	})
}

func withdrawals(l *eventLog, p netip.Prefix) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.all {
		if ev.Route.Prefix == p && ev.Withdrawn {
			n++
		}
	}
	return n
}

// TestGracefulRestart: B stops with graceful restart on; A keeps B's route
// as stale and never withdraws it; B comes back (Restarting) and the route
// is refreshed.
func TestGracefulRestart(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a, newB := grPair(t, true)
	b := newB("B", false)
	startNodes(t, a, b)
	if r := a.waitRoute(t, podGR, addrB, ovlB); r.Stale || !r.Best {
		t.Fatalf("A's fresh route = %+v, want best and not stale", r)
	}
	b.waitRoute(t, podA4, addrA, nhA4)
	raw, stopRaw := watchRawBest(t, a, podGR)
	a.neighbor(t, addrB) // orders the RIB reads above before A's next steps

	if err := b.stop(); err != nil {
		t.Fatalf("B: Run = %v", err)
	}
	if got := b.log.find("bgp: closed sessions without notification for graceful restart", map[string]string{"sessions": "1"}); len(got) != 1 {
		t.Errorf("B did not log closing its one session without a NOTIFICATION")
	}
	a.waitState(t, addrB, false)
	if r, ok := a.pathFrom(t, podGR, addrB); !ok || !r.Stale || !r.Best {
		t.Errorf("A's route from stopped B = %+v (found %v), want best and stale", r, ok)
	}
	if ev, _ := a.events.get(podGR); ev.Withdrawn {
		t.Errorf("A's last update for %s = %+v, want not withdrawn", podGR, ev)
	}
	eventually(t, 5*time.Second, func() string { // logged on the watcher's goroutine, maybe after ListPeer shows it
		if got := a.log.find("bgp: neighbor state", map[string]string{"neighbor": addrB.String(), "state": "established -> idle", "reason": "graceful-restart"}); len(got) != 1 {
			return fmt.Sprintf("A logged %d state changes established -> idle with reason graceful-restart, want 1", len(got))
		}
		return ""
	})
	time.Sleep(2 * time.Second) // well past what a Cease or a closed session would need to flush
	if r, ok := a.pathFrom(t, podGR, addrB); !ok || !r.Stale {
		t.Errorf("A's route 2s after B stopped = %+v (found %v), want still there, stale", r, ok)
	}

	b2 := newB("B2", true)
	a.neighbor(t, addrB)
	startNodes(t, b2)
	a.neighbor(t, addrB) // orders B2's StartBgp before A's next path selection
	a.waitState(t, addrB, true)
	eventually(t, 10*time.Second, func() string {
		r, ok := a.pathFrom(t, podGR, addrB)
		if !ok || r.Stale || !r.Best {
			return fmt.Sprintf("A's route from restarted B = %+v (found %v), want best and refreshed", r, ok)
		}
		return ""
	})
	b2.waitRoute(t, podA4, addrA, nhA4)
	stopRaw()
	if n := raw.withdrawals(); n != 0 {
		t.Errorf("A's best path for %s was withdrawn %d times during B's graceful restart, want never", podGR, n)
	}
	if n := withdrawals(a.events, podGR); n != 0 {
		t.Errorf("A delivered %d withdrawals of %s during B's graceful restart, want 0", n, podGR)
	}
	for _, n := range []*node{b2, a} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: Run = %v", n.name, err)
		}
	}
	checkNoLeaks(t, before)
}

// TestGracefulRestartDisabled: B stops with graceful restart off; A
// withdraws B's route at once (B's Cease, not a timer).
func TestGracefulRestartDisabled(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a, newB := grPair(t, false)
	b := newB("B", false)
	startNodes(t, a, b)
	a.waitRoute(t, podGR, addrB, ovlB)
	if err := b.stop(); err != nil {
		t.Fatalf("B: Run = %v", err)
	}
	stopped := time.Now()
	eventually(t, 5*time.Second, func() string {
		if rs := pathsFor(t, a.s, podGR); len(rs) != 0 {
			return fmt.Sprintf("A still has %+v", rs)
		}
		if ev, _ := a.events.get(podGR); !ev.Withdrawn {
			return fmt.Sprintf("A's last update for %s = %+v, want withdrawn", podGR, ev)
		}
		return ""
	})
	if d := time.Since(stopped); d > time.Second {
		t.Errorf("A withdrew B's route %v after B stopped, want at once (the hold time is 3s)", d)
	}
	eventually(t, 5*time.Second, func() string {
		if got := a.log.find("bgp: neighbor state", map[string]string{"neighbor": addrB.String(), "state": "established -> idle"}); len(got) != 1 || got[0].attrs["reason"] == "graceful-restart" {
			return fmt.Sprintf("A's state log for B = %+v, want one established -> idle, not graceful", got)
		}
		return ""
	})
	if err := a.stop(); err != nil {
		t.Errorf("A: Run = %v", err)
	}
	checkNoLeaks(t, before)
}
