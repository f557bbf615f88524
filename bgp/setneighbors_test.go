package bgp

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/goleak"
)

func TestDiffNeighbors(t *testing.T) {
	a := Neighbor{Address: netip.MustParseAddr("100.64.0.1"), ASN: asnA, Description: "a"}
	b := Neighbor{Address: netip.MustParseAddr("100.64.0.2"), ASN: asnB, Description: "b"}
	c := Neighbor{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, Kind: KindExternal}
	b2 := b
	b2.ASN = asnC
	cExt := c
	cExt.Multihop = 2
	tests := []struct {
		name             string
		cur, next        []Neighbor
		added, removed   []Neighbor
		changed          []neighborChange
		ending, starting []Neighbor
		empty            bool
	}{
		{name: "nothing to nothing", empty: true},
		{name: "same, other order", cur: []Neighbor{a, b, c}, next: []Neighbor{c, a, b}, empty: true},
		{name: "first", next: []Neighbor{b, a}, added: []Neighbor{a, b}, starting: []Neighbor{a, b}},
		{name: "all gone", cur: []Neighbor{a, c}, removed: []Neighbor{a, c}, ending: []Neighbor{a, c}},
		{name: "one added, one kept", cur: []Neighbor{a}, next: []Neighbor{a, c}, added: []Neighbor{c}, starting: []Neighbor{c}},
		{name: "one removed, one kept", cur: []Neighbor{a, b}, next: []Neighbor{b}, removed: []Neighbor{a}, ending: []Neighbor{a}},
		{
			name: "changed ASN", cur: []Neighbor{a, b}, next: []Neighbor{a, b2},
			changed: []neighborChange{{b, b2}}, ending: []Neighbor{b}, starting: []Neighbor{b2},
		},
		{
			name: "added, removed and changed", cur: []Neighbor{b, c}, next: []Neighbor{cExt, a},
			added: []Neighbor{a}, removed: []Neighbor{b}, changed: []neighborChange{{c, cExt}},
			ending: []Neighbor{b, c}, starting: []Neighbor{a, cExt},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diffNeighbors(tt.cur, tt.next)
			if !reflect.DeepEqual(d.added, tt.added) || !reflect.DeepEqual(d.removed, tt.removed) || !reflect.DeepEqual(d.changed, tt.changed) {
				t.Errorf("diff = added %v, removed %v, changed %v; want %v, %v, %v", d.added, d.removed, d.changed, tt.added, tt.removed, tt.changed)
			}
			if got := d.ending(); !reflect.DeepEqual(got, tt.ending) {
				t.Errorf("ending = %v, want %v", got, tt.ending)
			}
			if got := d.starting(); !reflect.DeepEqual(got, tt.starting) {
				t.Errorf("starting = %v, want %v", got, tt.starting)
			}
			if d.empty() != tt.empty {
				t.Errorf("empty = %v, want %v", d.empty(), tt.empty)
			}
		})
	}
}

func TestPlanNeighborSets(t *testing.T) {
	r1 := Neighbor{Address: netip.MustParseAddr("100.64.0.1"), ASN: asnA}
	r2 := Neighbor{Address: netip.MustParseAddr("100.64.0.2"), ASN: asnB}
	r6 := Neighbor{Address: netip.MustParseAddr("fd00::3"), ASN: asnC}
	x1 := Neighbor{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, Kind: KindExternal}
	x2 := Neighbor{Address: netip.MustParseAddr("192.0.2.2"), ASN: 65002, Kind: KindExternal}
	installed := func(ns ...Neighbor) (map[neighborGroup][]string, map[neighborGroup]bool) {
		s := neighborSets(ns)
		return s, groupsOf(s)
	}
	// Steps as "op group members", e.g. "add to roam-neighbors-roam [100.64.0.2/32]".
	tests := []struct {
		name      string
		cur, next []Neighbor
		// sets installed but not in the policies (an earlier change failed
		// after creating them)
		unused []Neighbor
		want   []string
	}{
		{name: "no change", cur: []Neighbor{r1, x1}, next: []Neighbor{r1, x1}},
		{
			name: "a second roam neighbour joins the sets, policies stay",
			cur:  []Neighbor{r1}, next: []Neighbor{r1, r2},
			want: []string{"add to roam-neighbors-roam [100.64.0.2/32]", "add to roam-neighbors-roam-v4 [100.64.0.2/32]"},
		},
		{
			name: "a roam neighbour leaves, policies stay",
			cur:  []Neighbor{r1, r2}, next: []Neighbor{r2},
			want: []string{"remove from roam-neighbors-roam [100.64.0.1/32]", "remove from roam-neighbors-roam-v4 [100.64.0.1/32]"},
		},
		{
			name: "one member replaces another: added before the other is removed, the set is never empty",
			cur:  []Neighbor{r1}, next: []Neighbor{r2},
			want: []string{
				"add to roam-neighbors-roam [100.64.0.2/32]", "add to roam-neighbors-roam-v4 [100.64.0.2/32]",
				"remove from roam-neighbors-roam [100.64.0.1/32]", "remove from roam-neighbors-roam-v4 [100.64.0.1/32]",
			},
		},
		{
			name: "the first external neighbour: its sets, then the policies",
			cur:  []Neighbor{r1}, next: []Neighbor{r1, x1},
			want: []string{"create roam-neighbors-external [192.0.2.1/32]", "create roam-neighbors-external-v4 [192.0.2.1/32]", "rebuild policies"},
		},
		{
			name: "the last external neighbour: the policies, then its sets go",
			cur:  []Neighbor{r1, x1}, next: []Neighbor{r1},
			want: []string{"rebuild policies", "delete roam-neighbors-external", "delete roam-neighbors-external-v4"},
		},
		{
			name: "the first IPv6 roam neighbour joins roam and creates roam-v6",
			cur:  []Neighbor{r1}, next: []Neighbor{r1, r6},
			want: []string{"add to roam-neighbors-roam [fd00::3/128]", "create roam-neighbors-roam-v6 [fd00::3/128]", "rebuild policies"},
		},
		{
			name: "IPv4 roam neighbours replaced by an IPv6 one",
			cur:  []Neighbor{r1, r2, x1}, next: []Neighbor{r6, x1},
			want: []string{
				"add to roam-neighbors-roam [fd00::3/128]", "create roam-neighbors-roam-v6 [fd00::3/128]", "rebuild policies",
				"remove from roam-neighbors-roam [100.64.0.1/32 100.64.0.2/32]", "delete roam-neighbors-roam-v4",
			},
		},
		{
			name: "external neighbours swapped, a roam one added",
			cur:  []Neighbor{x1}, next: []Neighbor{x2, r1},
			want: []string{
				"create roam-neighbors-roam [100.64.0.1/32]", "create roam-neighbors-roam-v4 [100.64.0.1/32]",
				"add to roam-neighbors-external [192.0.2.2/32]", "add to roam-neighbors-external-v4 [192.0.2.2/32]",
				"rebuild policies",
				"remove from roam-neighbors-external [192.0.2.1/32]", "remove from roam-neighbors-external-v4 [192.0.2.1/32]",
			},
		},
		{name: "no neighbours before or after", cur: nil, next: nil},
		{
			name: "every neighbour gone",
			cur:  []Neighbor{r1, x1}, next: nil,
			want: []string{
				"rebuild policies", "delete roam-neighbors-roam", "delete roam-neighbors-roam-v4",
				"delete roam-neighbors-external", "delete roam-neighbors-external-v4",
			},
		},
		{
			name: "sets created by a failed change: the policies are still rebuilt",
			cur:  []Neighbor{r1}, unused: []Neighbor{x1}, next: []Neighbor{r1, x1},
			want: []string{"rebuild policies"},
		},
		{
			name: "sets created by a failed change and no longer wanted are deleted",
			cur:  []Neighbor{r1}, unused: []Neighbor{x1}, next: []Neighbor{r1},
			want: []string{"delete roam-neighbors-external", "delete roam-neighbors-external-v4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have, inPolicy := installed(tt.cur...)
			for g, m := range neighborSets(tt.unused) {
				have[g] = append(have[g], m...)
			}
			var got []string
			for _, st := range planNeighborSets(have, inPolicy, neighborSets(tt.next)) {
				switch st.op {
				case setPolicies:
					got = append(got, "rebuild policies")
				case setDrop:
					got = append(got, fmt.Sprintf("%s %s", st.op, st.group.name()))
				default:
					got = append(got, fmt.Sprintf("%s %s %v", st.op, st.group.name(), st.members))
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestNeighborChanges(t *testing.T) {
	a := Neighbor{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, Kind: KindExternal, Password: "old", Description: "up"}
	b := a
	b.ASN, b.Password, b.Passive, b.Description = 65002, "new", true, "upstream"
	got := neighborChanges(a, b)
	want := `asn 65001 -> 65002, password changed, passive false -> true, description "up" -> "upstream"`
	if got != want {
		t.Errorf("neighborChanges = %q, want %q", got, want)
	}
	if strings.Contains(got, "old") || strings.Contains(got, "new") {
		t.Errorf("neighborChanges shows a password: %q", got)
	}
	if got := neighborChanges(a, a); got != "" {
		t.Errorf("neighborChanges of equal neighbours = %q, want empty", got)
	}
}

// policyState is what GoBGP holds of n's policies: the statement names of
// each policy and the members of each neighbour set.
func policyState(t *testing.T, n *node) (policies, sets map[string][]string) {
	t.Helper()
	srv, err := n.s.server()
	if err != nil {
		t.Fatal(err)
	}
	policies, sets = make(map[string][]string), make(map[string][]string)
	err = srv.ListPolicy(t.Context(), &api.ListPolicyRequest{}, func(p *api.Policy) {
		policies[p.Name] = []string{}
		for _, st := range p.Statements {
			policies[p.Name] = append(policies[p.Name], st.Name)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.ListDefinedSet(t.Context(), &api.ListDefinedSetRequest{DefinedType: api.DefinedType_NEIGHBOR}, func(d *api.DefinedSet) {
		sets[d.Name] = d.List
	})
	if err != nil {
		t.Fatal(err)
	}
	return policies, sets
}

// checkPolicies checks that n's GoBGP holds the policies and neighbour sets
// a speaker configured with ns from the start would have, and the statements
// in mustHave.
func checkPolicies(t *testing.T, n *node, ns []Neighbor, mustHave ...string) {
	t.Helper()
	cfg := n.cfg
	cfg.Neighbors = ns
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	ps := newPolicySpec(&cfg)
	// The quality policies have statements only for neighbours with a
	// cost (none here).
	want := map[string][]string{policyQualityImport: {}, policyQualityExport: {}}
	for _, p := range []*api.Policy{ps.importPolicy(policyImport), ps.exportPolicy(policyExport)} {
		for _, st := range p.Statements {
			want[p.Name] = append(want[p.Name], st.Name)
		}
	}
	wantSets := map[string][]string{}
	for g, m := range neighborSets(ns) {
		wantSets[g.name()] = m
	}
	policies, sets := policyState(t, n)
	if !reflect.DeepEqual(policies, want) {
		t.Errorf("%s's policies in GoBGP:\n  %v\nwant those for neighbours %v from the start:\n  %v", n.name, policies, ns, want)
	}
	if !reflect.DeepEqual(sets, wantSets) {
		t.Errorf("%s's neighbour sets in GoBGP = %v, want %v", n.name, sets, wantSets)
	}
	all := strings.Join(append(policies[policyImport], policies[policyExport]...), " ")
	for _, st := range mustHave {
		if !strings.Contains(" "+all+" ", " "+st+" ") {
			t.Errorf("%s's policies lack statement %s: %s", n.name, st, all)
		}
	}
}

// listed reports whether n has a neighbour at addr.
func listed(t *testing.T, n *node, addr netip.Addr) bool {
	t.Helper()
	ns, err := n.s.Neighbors(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ns {
		if x.Address == addr {
			return true
		}
	}
	return false
}

// sessionEnds counts n's log lines for a session with addr going down.
func sessionEnds(n *node, addr netip.Addr) int {
	c := 0
	for _, rec := range n.log.find("bgp: neighbor state", map[string]string{"neighbor": addr.String()}) {
		if strings.HasPrefix(rec.attrs["state"], "established -> ") {
			c++
		}
	}
	return c
}

// TestSetNeighbors: H (a transit hub) starts with one roam neighbour, R1.
// R2 (roam) and X (external) dial H from the start and are refused until H
// adds them at run time; then both are removed again. R1's session lives
// through it all.
func TestSetNeighbors(t *testing.T) {
	before := goleak.IgnoreCurrent()
	portH := freePort(t)
	nbrR1 := Neighbor{Address: addrR1, ASN: asnR1, Passive: true, Description: "R1"}
	nbrR2 := Neighbor{Address: addrR2, ASN: asnR2, Passive: true, Description: "R2"}
	nbrX := Neighbor{Address: addrX, ASN: asnX, Kind: KindExternal, Passive: true, Description: "X"}
	h := newNode(t, "H", Config{
		ASN: asnH, RouterID: netip.MustParseAddr("10.0.0.10"), ListenPort: portH, DisableGracefulRestart: true,
		ListenAddresses: []netip.Addr{addrH}, Transit: true, InternalPrefixes: []netip.Prefix{pods},
		Neighbors: []Neighbor{nbrR1},
	})
	dialer := func(name string, asn uint32, id string, self netip.Addr, cfg Config) *node {
		cfg.ASN, cfg.RouterID, cfg.ListenPort = asn, netip.MustParseAddr(id), -1
		cfg.Neighbors = []Neighbor{{Address: addrH, Port: portH, ASN: asnH, LocalAddress: self, Description: "H"}}
		return newNode(t, name, cfg)
	}
	r1 := dialer("R1", asnR1, "10.0.0.11", addrR1, Config{})
	r2 := dialer("R2", asnR2, "10.0.0.12", addrR2, Config{})
	x := dialer("X", asnX, "10.0.0.4", addrX, Config{AllowPublicASN: true})
	internalX := netip.MustParsePrefix("10.244.99.0/24") // a pod range: not from an external neighbour
	h.announce(t, podH, ovlH)
	r1.announce(t, podR1, ovlR1)
	r2.announce(t, podR2, ovlR2)
	x.announce(t, extX, addrX)
	x.announce(t, internalX, addrX)
	startNodes(t, h, r1, r2, x)
	h.waitEstablished(t, addrR1)
	h.waitRoute(t, podR1, addrR1, ovlR1)
	r1.waitRoute(t, podH, addrH, ovlH)
	up0, at0 := h.neighbor(t, addrR1).Uptime, time.Now()
	ctx := t.Context()

	t.Run("a roam neighbour added at run time", func(t *testing.T) {
		if listed(t, h, addrR2) {
			t.Fatal("H lists R2 before it was added")
		}
		if err := h.s.SetNeighbors(ctx, []Neighbor{nbrR1, nbrR2}); err != nil {
			t.Fatal(err)
		}
		h.waitEstablished(t, addrR2)
		// Both ways, with the roam policies: H's own prefix keeps its
		// announced next hop, R1's transits H with next-hop-self, and R2's
		// reaches H tagged roam-learned and R1 through H.
		r2.waitRoute(t, podH, addrH, ovlH)
		r2.waitRoute(t, podR1, addrH, addrH)
		h.waitRoute(t, podR2, addrR2, ovlR2)
		r1.waitRoute(t, podR2, addrH, addrH)
		if lc := h.largeCommunities(t, podR2); !slices.Equal(lc, []string{tagRoam(asnH)}) {
			t.Errorf("H's path for %s from R2 carries %v, want the roam-learned tag", podR2, lc)
		}
		if got := h.log.find("bgp: neighbor added", map[string]string{"neighbor": addrR2.String(), "kind": "roam", "description": "R2"}); len(got) != 1 {
			t.Errorf("H logged %d \"neighbor added\" lines for R2, want 1", len(got))
		}
		checkPolicies(t, h, []Neighbor{nbrR1, nbrR2})
		if listed(t, h, addrX) {
			t.Error("H lists X, which it was not given")
		}
	})

	t.Run("the first external neighbour gets the external policies", func(t *testing.T) {
		if err := h.s.SetNeighbors(ctx, []Neighbor{nbrX, nbrR1, nbrR2}); err != nil {
			t.Fatal(err)
		}
		checkPolicies(t, h, []Neighbor{nbrR1, nbrR2, nbrX},
			"roam-import-from-external", "roam-import-internal-v4-from-external",
			"roam-export-originated-v4-to-external", "roam-export-transit-roam-v4-to-external", "roam-export-rest-to-external")
		h.waitEstablished(t, addrX)
		// Export to an external neighbour: next-hop-self, roam routes
		// transit, X's own route never goes back.
		x.waitRoute(t, podH, addrH, addrH)
		x.waitRoute(t, podR1, addrH, addrH)
		x.waitRoute(t, podR2, addrH, addrH)
		// Import from it: tagged external-learned, passed on to roam
		// neighbours; a pod range from it is rejected as internal.
		h.waitRoute(t, extX, addrX, addrX)
		r1.waitRoute(t, extX, addrH, addrH)
		if lc := h.largeCommunities(t, extX); !slices.Equal(lc, []string{tagExternal(asnH)}) {
			t.Errorf("H's path for %s from X carries %v, want the external-learned tag", extX, lc)
		}
		eventually(t, 5*time.Second, func() string {
			if got := advertised(t, h, addrX); !slices.Equal(got, strs(podH, podR1, podR2)) {
				return fmt.Sprintf("H advertises %v to X, want %v", got, strs(podH, podR1, podR2))
			}
			logs := h.log.find("bgp: rejected route", map[string]string{"neighbor": addrX.String(), "prefix": internalX.String(), "rule": ruleInternal, "kind": "external"})
			if len(logs) != 1 {
				return fmt.Sprintf("H logged %d rejections of %s from X as internal, want 1", len(logs), internalX)
			}
			return ""
		})
		if _, ok := h.pathFrom(t, internalX, addrX); ok {
			t.Errorf("H accepted %s from external X", internalX)
		}
		if n := h.neighbor(t, addrX); n.Kind != KindExternal {
			t.Errorf("H's view of X = %+v, want kind external", n)
		}
	})

	t.Run("removed neighbours: sessions end, routes withdrawn", func(t *testing.T) {
		if err := h.s.SetNeighbors(ctx, []Neighbor{nbrR1}); err != nil {
			t.Fatal(err)
		}
		checkPolicies(t, h, []Neighbor{nbrR1})
		if listed(t, h, addrR2) || listed(t, h, addrX) {
			t.Errorf("H still lists R2 or X after removing them")
		}
		for _, c := range []struct {
			n *node
			p netip.Prefix
		}{{h, podR2}, {h, extX}, {r1, podR2}, {r1, extX}, {r2, podH}, {r2, podR1}, {x, podH}, {x, podR1}} {
			eventually(t, 5*time.Second, func() string {
				if rs := pathsFor(t, c.n.s, c.p); len(rs) != 0 {
					return fmt.Sprintf("%s still has %+v", c.n.name, rs)
				}
				return ""
			})
		}
		eventually(t, 5*time.Second, func() string {
			for _, p := range []netip.Prefix{podR2, extX} {
				if ev, _ := h.events.get(p); !ev.Withdrawn {
					return fmt.Sprintf("H's last update for %s = %+v, want withdrawn", p, ev)
				}
			}
			// Logged with the kind it had, though no longer configured.
			if got := h.log.find("bgp: neighbor state", map[string]string{"neighbor": addrX.String(), "kind": "external", "description": "X", "state": "established -> idle"}); len(got) != 1 {
				return fmt.Sprintf("H logged %d \"established -> idle\" lines for X as external, want 1", len(got))
			}
			return ""
		})
		for _, c := range []struct {
			addr netip.Addr
			kind string
		}{{addrR2, "roam"}, {addrX, "external"}} {
			if got := h.log.find("bgp: neighbor removed", map[string]string{"neighbor": c.addr.String(), "kind": c.kind}); len(got) != 1 {
				t.Errorf("H logged %d \"neighbor removed\" lines for %s, want 1", len(got), c.addr)
			}
		}
	})

	t.Run("the unchanged neighbour kept its session", func(t *testing.T) {
		n := h.neighbor(t, addrR1)
		if min := up0 + time.Since(at0) - 2*time.Second; !n.Established() || n.Uptime < min {
			t.Errorf("H's session with R1: %+v, want established with uptime >= %v (not reset)", n, min)
		}
		if c := sessionEnds(h, addrR1) + sessionEnds(r1, addrH); c != 0 {
			t.Errorf("the H-R1 session went down %d times", c)
		}
		for _, c := range []struct {
			n *node
			p netip.Prefix
		}{{h, podR1}, {r1, podH}} {
			if w := withdrawals(c.n.events, c.p); w != 0 {
				t.Errorf("%s withdrew %s %d times", c.n.name, c.p, w)
			}
		}
		r1.waitRoute(t, podH, addrH, ovlH)
	})

	t.Run("a changed neighbour gets a new session", func(t *testing.T) {
		renamed := nbrR1
		renamed.Description = "R1 renamed"
		if err := h.s.SetNeighbors(ctx, []Neighbor{renamed}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() string {
			if c := sessionEnds(r1, addrH); c != 1 {
				return fmt.Sprintf("R1 saw its session with H end %d times, want 1", c)
			}
			return ""
		})
		h.waitEstablished(t, addrR1)
		if n := h.neighbor(t, addrR1); n.Description != "R1 renamed" {
			t.Errorf("H's view of R1 = %+v, want the new description", n)
		}
		want := map[string]string{"neighbor": addrR1.String(), "changes": `description "R1" -> "R1 renamed"`}
		if got := h.log.find("bgp: neighbor changed", want); len(got) != 1 {
			t.Errorf("H logged %d \"neighbor changed\" lines %v, want 1", len(got), want)
		}
		h.waitRoute(t, podR1, addrR1, ovlR1)
		checkPolicies(t, h, []Neighbor{renamed})
	})

	for _, n := range []*node{x, r2, r1, h} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: Run returned %v", n.name, err)
		}
	}
	checkNoLeaks(t, before)
}

// TestSetNeighborsNotRunning: before Run, SetNeighbors replaces the list Run
// starts with; an invalid list changes nothing; after Run it still works.
func TestSetNeighborsNotRunning(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a := Neighbor{Address: netip.MustParseAddr("192.0.2.1"), ASN: asnB, Passive: true}
	b := Neighbor{Address: netip.MustParseAddr("192.0.2.2"), ASN: asnC, Passive: true, MaxPrefixes: 5}
	c := Neighbor{Address: netip.MustParseAddr("2001:db8::3"), ASN: 65003, Kind: KindExternal, Passive: true}
	n := newNode(t, "X", Config{ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1, MaxPrefixes: 50, Neighbors: []Neighbor{a}})
	ctx := t.Context()
	err := n.s.SetNeighbors(ctx, []Neighbor{b, {Address: b.Address, ASN: asnA}})
	if err == nil || err.Error() != `bgp: config: Neighbors[1]: Address "192.0.2.2" is configured twice` {
		t.Errorf("SetNeighbors with a duplicate = %v", err)
	}
	if err := n.s.SetNeighbors(ctx, []Neighbor{{Address: c.Address}}); err == nil || !strings.Contains(err.Error(), "Neighbors[0].ASN is required") {
		t.Errorf("SetNeighbors without an ASN = %v", err)
	}
	if got := n.s.Config().Neighbors; len(got) != 1 || got[0].Address != a.Address {
		t.Fatalf("neighbours after invalid lists = %+v, want only %s", got, a.Address)
	}
	if err := n.s.SetNeighbors(ctx, []Neighbor{c, b}); err != nil {
		t.Fatal(err)
	}
	got := n.s.Config().Neighbors
	if len(got) != 2 || got[0].Address != b.Address || got[0].MaxPrefixes != 5 || got[0].Port != 179 ||
		got[1].Address != c.Address || got[1].MaxPrefixes != 50 {
		t.Errorf("neighbours = %+v, want %s (limit 5) and %s (limit 50), port 179", got, b.Address, c.Address)
	}
	n.stop = runSpeaker(t, n.s)
	started(t, n.s, 2)
	ps := listPeers(t, n)
	if ps[a.Address] != nil || ps[b.Address] == nil || ps[c.Address] == nil {
		t.Errorf("GoBGP's neighbours = %v, want %s and %s", slices.Collect(maps.Keys(ps)), b.Address, c.Address)
	}
	checkPolicies(t, n, []Neighbor{b, c}, "roam-export-originated-v6-to-external")
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.s.SetNeighbors(ctx, []Neighbor{a}); err != nil {
		t.Errorf("SetNeighbors after Run = %v", err)
	}
	if got := n.s.Config().Neighbors; len(got) != 1 || got[0].Address != a.Address {
		t.Errorf("neighbours after Run = %+v, want %s", got, a.Address)
	}
	checkNoLeaks(t, before)
}
