package bgp

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/goleak"
)

func TestLocalPref(t *testing.T) {
	tests := []struct {
		name string
		cost uint16
		want uint32
	}{
		{name: "not measured: BGP's default", cost: 0, want: 100},
		{name: "perfect link: BGP's default", cost: 256, want: 100},
		{name: "72.7 rounds up", cost: 352, want: 73},
		{name: "85.3 rounds down", cost: 300, want: 85},
		{name: "twice the cost, half the preference", cost: 512, want: 50},
		{name: "dead link: at least 1", cost: 65535, want: 1},
		{name: "better than perfect", cost: 128, want: 200},
		{name: "lowest cost", cost: 1, want: 25600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LocalPref(tt.cost); got != tt.want {
				t.Errorf("LocalPref(%d) = %d, want %d", tt.cost, got, tt.want)
			}
		})
	}
}

// anycastQ is announced by both B and C in TestQuality.
var anycastQ = netip.MustParsePrefix("10.244.50.0/24")

// waitPath waits until n has a path for p from neighbour from with local-pref
// lp (0: none), and returns it.
func (n *node) waitPath(t *testing.T, p netip.Prefix, from netip.Addr, lp uint32) Route {
	t.Helper()
	var r Route
	eventually(t, 10*time.Second, func() string {
		var ok bool
		if r, ok = n.pathFrom(t, p, from); !ok {
			return fmt.Sprintf("%s has no path for %s from %s", n.name, p, from)
		}
		if r.LocalPref != lp {
			return fmt.Sprintf("%s's path for %s from %s has local-pref %d, want %d", n.name, p, from, r.LocalPref, lp)
		}
		return ""
	})
	return r
}

// waitMED waits until n's path for p from neighbour from carries MED med.
func (n *node) waitMED(t *testing.T, p netip.Prefix, from netip.Addr, med uint32) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		r, ok := n.pathFrom(t, p, from)
		if !ok {
			return fmt.Sprintf("%s has no path for %s from %s", n.name, p, from)
		}
		if r.MED != med {
			return fmt.Sprintf("%s's path for %s from %s has MED %d, want %d", n.name, p, from, r.MED, med)
		}
		return ""
	})
}

// waitBest waits until n's best path for p, in its RIB and in the last
// update it published, is the one from neighbour from.
func (n *node) waitBest(t *testing.T, p netip.Prefix, from netip.Addr) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		if r, ok := bestRoute(t, n.s, p); !ok || r.From != from {
			return fmt.Sprintf("%s's best path for %s = %+v, want the one from %s", n.name, p, r, from)
		}
		if ev, _ := n.events.get(p); ev.Withdrawn || ev.Route.From != from {
			return fmt.Sprintf("%s's last update for %s = %+v, want the path from %s", n.name, p, ev, from)
		}
		return ""
	})
}

// assignedPolicies lists n's global policies of direction dir, in order.
func assignedPolicies(t *testing.T, n *node, dir api.PolicyDirection) []string {
	t.Helper()
	srv, err := n.s.server()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = srv.ListPolicyAssignment(t.Context(), &api.ListPolicyAssignmentRequest{Name: "global", Direction: dir}, func(a *api.PolicyAssignment) {
		for _, p := range a.Policies {
			out = append(out, p.Name)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkQualityPolicies checks that n's quality policies hold one statement
// for each cost in costs (by neighbour), and only the neighbour sets of
// those neighbours exist besides the group sets; and that the quality
// policies come first.
func checkQualityPolicies(t *testing.T, n *node, costs map[netip.Addr]uint16) {
	t.Helper()
	want := map[string][]string{policyQualityImport: {}, policyQualityExport: {}}
	var wantSets []string
	for _, a := range slices.SortedFunc(maps.Keys(costs), netip.Addr.Compare) {
		for _, dir := range policyDirections {
			want[qualityPolicyName(dir)] = append(want[qualityPolicyName(dir)], qualityStatement(dir, a, costs[a]).Name)
		}
		wantSets = append(wantSets, qualitySetName(a))
	}
	policies, sets := policyState(t, n)
	for name, sts := range want {
		slices.Sort(sts)
		got := slices.Sorted(slices.Values(policies[name]))
		if !slices.Equal(got, sts) {
			t.Errorf("%s's policy %s has statements %v, want %v", n.name, name, got, sts)
		}
	}
	var gotSets []string
	for name, members := range sets {
		if strings.HasPrefix(name, "roam-quality-") {
			gotSets = append(gotSets, name)
			if len(members) != 1 {
				t.Errorf("%s's neighbour set %s = %v, want one member", n.name, name, members)
			}
		}
	}
	slices.Sort(gotSets)
	slices.Sort(wantSets)
	if !slices.Equal(gotSets, wantSets) {
		t.Errorf("%s's quality neighbour sets = %v, want %v", n.name, gotSets, wantSets)
	}
	for _, c := range []struct {
		dir  api.PolicyDirection
		want []string
	}{{api.PolicyDirection_IMPORT, []string{policyQualityImport, policyImport}}, {api.PolicyDirection_EXPORT, []string{policyQualityExport, policyExport}}} {
		if got := assignedPolicies(t, n, c.dir); !slices.Equal(got, c.want) {
			t.Errorf("%s's global %v policies = %v, want %v", n.name, c.dir, got, c.want)
		}
	}
}

// qualityLogs counts n's "bgp: neighbor quality" lines for addr.
func qualityLogs(n *node, addr netip.Addr) int {
	return len(n.log.find("bgp: neighbor quality", map[string]string{"neighbor": addr.String()}))
}

// softResets counts GoBGP's soft resets of n's neighbour addr.
func softResets(n *node, addr netip.Addr) int {
	return len(n.log.find("Neighbor soft reset", map[string]string{"Key": addr.String()}))
}

// TestQuality: A has two roam neighbours, B and C, that both announce
// anycastQ besides their own prefixes; A sets their link quality.
func TestQuality(t *testing.T) {
	before := goleak.IgnoreCurrent()
	portA := freePort(t)
	nbrB := Neighbor{Address: addrR1, ASN: asnR1, Passive: true, Description: "B"}
	nbrC := Neighbor{Address: addrR2, ASN: asnR2, Passive: true, Description: "C"}
	nbrX := Neighbor{Address: addrX, ASN: asnX, Kind: KindExternal, Passive: true, Description: "X"} // never dials
	// Graceful restart off: see newHubTopology (TestQualityGracefulRestart
	// has it on).
	a := newNode(t, "A", Config{
		ASN: asnH, RouterID: netip.MustParseAddr("10.0.0.10"), ListenPort: portA, DisableGracefulRestart: true,
		ListenAddresses: []netip.Addr{addrH}, Neighbors: []Neighbor{nbrB, nbrC},
	})
	dialer := func(name string, asn uint32, id string, self netip.Addr) *node {
		return newNode(t, name, Config{ASN: asn, RouterID: netip.MustParseAddr(id), ListenPort: -1,
			Neighbors: []Neighbor{{Address: addrH, Port: portA, ASN: asnH, LocalAddress: self, Description: "A"}}})
	}
	b := dialer("B", asnR1, "10.0.0.11", addrR1)
	c := dialer("C", asnR2, "10.0.0.12", addrR2)
	a.announce(t, podH, ovlH)
	b.announce(t, podR1, ovlR1)
	b.announce(t, anycastQ, ovlR1)
	c.announce(t, podR2, ovlR2)
	c.announce(t, anycastQ, ovlR2)
	ctx := t.Context()

	if err := a.s.SetQuality(ctx, netip.Addr{}, Quality{Cost: 256}); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("SetQuality of an invalid address = %v, want an error", err)
	}
	// Before Run: remembered, applied when Run starts.
	if err := a.s.SetQuality(ctx, addrR2, Quality{Cost: 512}); err != nil {
		t.Fatal(err)
	}
	startNodes(t, a, b, c)
	a.waitEstablished(t, addrR1, addrR2)

	t.Run("a quality set before Run applies when it starts", func(t *testing.T) {
		a.waitPath(t, podR2, addrR2, 50)
		c.waitMED(t, podH, addrH, 512)
		a.waitPath(t, podR1, addrR1, 0) // B: no cost, no local-pref
		b.waitMED(t, podH, addrH, 0)
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR2: 512})
	})

	t.Run("cost sets local-pref and MED without a session reset", func(t *testing.T) {
		up0, at0 := a.neighbor(t, addrR1).Uptime, time.Now()
		if err := a.s.SetQuality(ctx, addrR1, Quality{Cost: 352}); err != nil {
			t.Fatal(err)
		}
		a.waitPath(t, podR1, addrR1, 73)
		b.waitMED(t, podH, addrH, 352)
		if err := a.s.SetQuality(ctx, addrR1, Quality{Cost: 256}); err != nil {
			t.Fatal(err)
		}
		a.waitPath(t, podR1, addrR1, 100)
		b.waitMED(t, podH, addrH, 256)
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR1: 256, addrR2: 512})
		n := a.neighbor(t, addrR1)
		if min := up0 + time.Since(at0) - 2*time.Second; !n.Established() || n.Uptime < min {
			t.Errorf("A's session with B: %+v, want established with uptime >= %v (not reset)", n, min)
		}
		if c := sessionEnds(a, addrR1) + sessionEnds(b, addrH); c != 0 {
			t.Errorf("the A-B session went down %d times", c)
		}
		want := map[string]string{"neighbor": addrR1.String(), "cost": "352 -> 256", "local_pref": "73 -> 100"}
		if got := a.log.find("bgp: neighbor quality", want); len(got) != 1 || got[0].level != slogInfo {
			t.Errorf("A logged %+v, want one Info line with %v", got, want)
		}
	})

	t.Run("the best path follows the cost", func(t *testing.T) {
		// B 256 (local-pref 100), C 512 (50).
		a.waitBest(t, anycastQ, addrR1)
		for _, q := range []struct {
			addr netip.Addr
			cost uint16
		}{{addrR1, 512}, {addrR2, 256}} {
			if err := a.s.SetQuality(ctx, q.addr, Quality{Cost: q.cost}); err != nil {
				t.Fatal(err)
			}
		}
		a.waitBest(t, anycastQ, addrR2)
		a.waitPath(t, anycastQ, addrR1, 50)
		a.waitPath(t, anycastQ, addrR2, 100)
	})

	t.Run("the same quality twice changes nothing", func(t *testing.T) {
		logs, resets := qualityLogs(a, addrR2), softResets(a, addrR2)
		if resets == 0 {
			t.Fatalf("A logged no soft reset of C after its cost changed")
		}
		if err := a.s.SetQuality(ctx, addrR2, Quality{Cost: 256}); err != nil {
			t.Fatal(err)
		}
		if l, r := qualityLogs(a, addrR2), softResets(a, addrR2); l != logs || r != resets {
			t.Errorf("the same quality again: %d more quality log lines, %d more soft resets, want none", l-logs, r-resets)
		}
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR1: 512, addrR2: 256})
	})

	t.Run("down shuts the session and drops its routes at once; up restores them", func(t *testing.T) {
		at := time.Now()
		if err := a.s.SetQuality(ctx, addrR1, Quality{Down: true, Cost: 512}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, func() string {
			if rs := pathsFor(t, a.s, podR1); len(rs) != 0 {
				return fmt.Sprintf("A still has %+v", rs)
			}
			if ev, _ := a.events.get(podR1); !ev.Withdrawn {
				return fmt.Sprintf("A's last update for %s = %+v, want withdrawn", podR1, ev)
			}
			if _, ok := a.pathFrom(t, anycastQ, addrR1); ok {
				return fmt.Sprintf("A still has B's path for %s", anycastQ)
			}
			if n := b.neighbor(t, addrH); n.Established() {
				return "B's session with A is still established"
			}
			return ""
		})
		t.Logf("B's routes left A's RIB within %v", time.Since(at).Round(time.Millisecond))
		a.waitBest(t, anycastQ, addrR2)
		if n := a.neighbor(t, addrR1); n.State != "idle (admin down)" {
			t.Errorf("A's view of B = %+v, want idle (admin down)", n)
		}
		if got := b.log.find("received notification", map[string]string{"Communicated-Reason": "roam: tunnel down"}); len(got) != 1 {
			t.Errorf("B logged %d notifications saying \"roam: tunnel down\", want 1", len(got))
		}
		if got := a.log.find("bgp: neighbor quality", map[string]string{"neighbor": addrR1.String(), "state": "up -> down"}); len(got) != 1 {
			t.Errorf("A logged %d \"up -> down\" quality lines for B, want 1", len(got))
		}
		time.Sleep(3 * time.Second) // idle hold 1s, B dials every 1-2s
		if n := b.neighbor(t, addrH); n.Established() {
			t.Errorf("B's session with A came back while A holds it down: %+v", n)
		}
		if err := a.s.SetQuality(ctx, addrR1, Quality{Cost: 512}); err != nil {
			t.Fatal(err)
		}
		a.waitEstablished(t, addrR1)
		a.waitPath(t, podR1, addrR1, 50)
		b.waitMED(t, podH, addrH, 512)
		if got := a.log.find("bgp: neighbor quality", map[string]string{"neighbor": addrR1.String(), "state": "down -> up"}); len(got) != 1 {
			t.Errorf("A logged %d \"down -> up\" quality lines for B, want 1", len(got))
		}
	})

	t.Run("the quality survives SetNeighbors removing and adding back the neighbour", func(t *testing.T) {
		if err := a.s.SetNeighbors(ctx, []Neighbor{nbrC}); err != nil {
			t.Fatal(err)
		}
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR2: 256})
		if err := a.s.SetNeighbors(ctx, []Neighbor{nbrB, nbrC}); err != nil {
			t.Fatal(err)
		}
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR1: 512, addrR2: 256})
		a.waitEstablished(t, addrR1)
		a.waitPath(t, podR1, addrR1, 50)
		b.waitMED(t, podH, addrH, 512)

		// Down, removed, added back: still down.
		if err := a.s.SetQuality(ctx, addrR1, Quality{Down: true, Cost: 512}); err != nil {
			t.Fatal(err)
		}
		if err := a.s.SetNeighbors(ctx, []Neighbor{nbrC}); err != nil {
			t.Fatal(err)
		}
		if err := a.s.SetNeighbors(ctx, []Neighbor{nbrB, nbrC}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if n := a.neighbor(t, addrR1); n.State != "idle (admin down)" {
			t.Errorf("A's view of B added back while down = %+v, want idle (admin down)", n)
		}
		if err := a.s.SetQuality(ctx, addrR1, Quality{Cost: 512}); err != nil {
			t.Fatal(err)
		}
		a.waitEstablished(t, addrR1)
		a.waitPath(t, podR1, addrR1, 50)
	})

	t.Run("the quality survives a policy rebuild; external neighbours are left alone", func(t *testing.T) {
		// Remembered for an address not configured yet.
		if err := a.s.SetQuality(ctx, addrX, Quality{Down: true, Cost: 300}); err != nil {
			t.Fatal(err)
		}
		up0, at0 := a.neighbor(t, addrR1).Uptime, time.Now()
		// The first external neighbour: the roam policies are rebuilt.
		if err := a.s.SetNeighbors(ctx, []Neighbor{nbrX, nbrB, nbrC}); err != nil {
			t.Fatal(err)
		}
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR1: 512, addrR2: 256})
		if _, ok := policyStatements(t, a)["roam-export-rest-to-external"]; !ok {
			t.Errorf("A's policies were not rebuilt for the external neighbour")
		}
		a.waitPath(t, podR1, addrR1, 50)
		a.waitPath(t, podR2, addrR2, 100)
		b.waitMED(t, podH, addrH, 512)
		c.waitMED(t, podH, addrH, 256)
		if n := a.neighbor(t, addrX); strings.Contains(n.State, "admin down") {
			t.Errorf("A's view of external X = %+v, want it not shut", n)
		}
		if n := a.neighbor(t, addrR1); !n.Established() || n.Uptime < up0+time.Since(at0)-2*time.Second {
			t.Errorf("A's session with B: %+v, want established, not reset", n)
		}
		// Rebuilt again without X: still first.
		if err := a.s.SetNeighbors(ctx, []Neighbor{nbrB, nbrC}); err != nil {
			t.Fatal(err)
		}
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR1: 512, addrR2: 256})
		a.waitPath(t, podR1, addrR1, 50)
	})

	t.Run("cost 0 removes the attributes", func(t *testing.T) {
		if err := a.s.SetQuality(ctx, addrR1, Quality{}); err != nil {
			t.Fatal(err)
		}
		a.waitPath(t, podR1, addrR1, 0)
		b.waitMED(t, podH, addrH, 0)
		checkQualityPolicies(t, a, map[netip.Addr]uint16{addrR2: 256})
	})

	for _, n := range []*node{c, b, a} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: Run returned %v", n.name, err)
		}
	}
	checkNoLeaks(t, before)
}

// policyStatements is the set of statement names in n's policies.
func policyStatements(t *testing.T, n *node) map[string]bool {
	t.Helper()
	policies, _ := policyState(t, n)
	out := make(map[string]bool)
	for _, sts := range policies {
		for _, st := range sts {
			out[st] = true
		}
	}
	return out
}

// TestQualityGracefulRestart: with graceful restart negotiated, a shut
// session drops the neighbour's routes at once on both sides, though GoBGP
// may record its end as a graceful restart (see shutLocked); they come back
// when the tunnel is up again. Routes a neighbour that went away keeps as
// stale (its session ended without a NOTIFICATION, as when the tunnel dies
// and the hold timer runs out) go at once too. Only Updates and Neighbors
// are read (see waitState).
func TestQualityGracefulRestart(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a, newB := grPair(t, true)
	b := newB("B", false)
	startNodes(t, a, b)
	a.waitState(t, addrB, true)
	got := func(n *node, p netip.Prefix, withdrawn bool) func() string {
		return func() string {
			if ev, ok := n.events.get(p); !ok || ev.Withdrawn != withdrawn {
				return fmt.Sprintf("%s's last update for %s = %+v, want withdrawn=%v", n.name, p, ev, withdrawn)
			}
			return ""
		}
	}
	eventually(t, 10*time.Second, got(a, podGR, false))
	eventually(t, 10*time.Second, got(b, podA4, false))

	if err := a.s.SetQuality(t.Context(), addrB, Quality{Down: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, got(a, podGR, true))
	eventually(t, 2*time.Second, got(b, podA4, true))
	if n := a.neighbor(t, addrB); n.State != "idle (admin down)" || n.Accepted != 0 {
		t.Errorf("A's view of B = %+v, want idle (admin down) with nothing accepted", n)
	}

	if err := a.s.SetQuality(t.Context(), addrB, Quality{}); err != nil {
		t.Fatal(err)
	}
	a.waitState(t, addrB, true)
	eventually(t, 10*time.Second, got(a, podGR, false))
	eventually(t, 10*time.Second, got(b, podA4, false))

	// B stops: A keeps its route as stale, until the tunnel is down.
	if err := b.stop(); err != nil {
		t.Errorf("B: %v", err)
	}
	a.waitState(t, addrB, false)
	time.Sleep(500 * time.Millisecond)
	if why := got(a, podGR, false)(); why != "" {
		t.Fatalf("A did not keep B's route through B's graceful restart: %s", why)
	}
	if err := a.s.SetQuality(t.Context(), addrB, Quality{Down: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, got(a, podGR, true))
	if err := a.stop(); err != nil {
		t.Errorf("A: %v", err)
	}
	checkNoLeaks(t, before)
}

// TestQualityPolicies: an IPv6 roam neighbour's statements and set; an
// external neighbour gets none; a change that failed halfway (a statement
// deleted by hand) is completed by the next call with the same quality.
func TestQualityPolicies(t *testing.T) {
	before := goleak.IgnoreCurrent()
	r6 := Neighbor{Address: netip.MustParseAddr("fd00::3"), ASN: asnB, Passive: true}
	x := Neighbor{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, Kind: KindExternal, Passive: true}
	n := newNode(t, "N", Config{ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1, Neighbors: []Neighbor{r6, x}})
	n.stop = runSpeaker(t, n.s)
	started(t, n.s, 2)
	ctx := t.Context()
	set := func(addr netip.Addr, q Quality) {
		t.Helper()
		if err := n.s.SetQuality(ctx, addr, q); err != nil {
			t.Fatal(err)
		}
	}
	set(r6.Address, Quality{Cost: 300})
	set(x.Address, Quality{Down: true, Cost: 300})
	checkQualityPolicies(t, n, map[netip.Addr]uint16{r6.Address: 300})
	_, sets := policyState(t, n)
	if got := sets["roam-quality-fd00::3"]; !slices.Equal(got, []string{"fd00::3/128"}) {
		t.Errorf("neighbour set for %s = %v, want [fd00::3/128]", r6.Address, got)
	}
	if st := n.neighbor(t, x.Address).State; strings.Contains(st, "admin down") {
		t.Errorf("external neighbour shut: %s", st)
	}

	srv, err := n.s.server()
	if err != nil {
		t.Fatal(err)
	}
	// By hand (gobgp CLI): the import statement goes.
	if err := removeStatement(ctx, srv, policyQualityImport, qualityStatement(api.PolicyDirection_IMPORT, r6.Address, 300).Name); err != nil {
		t.Fatal(err)
	}
	if err := n.s.SetQuality(ctx, r6.Address, Quality{Cost: 400}); err == nil {
		t.Fatal("SetQuality succeeded though its old statement was gone")
	}
	set(r6.Address, Quality{Cost: 400})
	checkQualityPolicies(t, n, map[netip.Addr]uint16{r6.Address: 400})

	set(r6.Address, Quality{Down: true, Cost: 400})
	if st := n.neighbor(t, r6.Address).State; st != "idle (admin down)" {
		t.Errorf("%s's state = %q, want idle (admin down)", r6.Address, st)
	}
	set(r6.Address, Quality{})
	checkQualityPolicies(t, n, nil)
	if st := n.neighbor(t, r6.Address).State; strings.Contains(st, "admin down") {
		t.Errorf("%s's state = %q after Down false", r6.Address, st)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	checkNoLeaks(t, before)
}
