package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Names of the defined sets and policies the speaker installs in GoBGP. They
// show up in `gobgp policy` and `gobgp global policy`.
const (
	setOriginated4 = "roam-originated-v4"
	setOriginated6 = "roam-originated-v6"
	setDefault4    = "roam-default-v4"
	setDefault6    = "roam-default-v6"
	setMartian4    = "roam-martian-v4"
	setMartian6    = "roam-martian-v6"
	setOverlay4    = "roam-overlay-v4"
	setOverlay6    = "roam-overlay-v6"
	setInternal4   = "roam-internal-v4"
	setInternal6   = "roam-internal-v6"
	setTags        = "roam-learned"
	setTagRoam     = "roam-learned-roam"
	setTagExternal = "roam-learned-external"
	policyImport   = "roam-import"
	policyExport   = "roam-export"
)

// Large communities (our ASN:1:n) with which the import policy tags a learned
// route with the kind of neighbour it came from, so that the export policy,
// which only sees the destination neighbour, can tell roam-learned from
// external-learned routes. They are stripped on import (a neighbour cannot
// set them for us) and on export (they never leave this speaker).
func tagRoam(asn uint32) string     { return fmt.Sprintf("%d:1:1", asn) }
func tagExternal(asn uint32) string { return fmt.Sprintf("%d:1:2", asn) }

var (
	family4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	family6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// originatedSet is the name of the prefix set holding p's family.
func originatedSet(p netip.Prefix) string {
	if p.Addr().Is4() {
		return setOriginated4
	}
	return setOriginated6
}

func exactPrefix(p netip.Prefix) *api.Prefix {
	return &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())}
}

func orLongerPrefix(p netip.Prefix) *api.Prefix {
	return &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Addr().BitLen())}
}

func prefixSet(name string, ps ...netip.Prefix) *api.DefinedSet {
	d := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name}
	for _, p := range ps {
		d.Prefixes = append(d.Prefixes, exactPrefix(p))
	}
	return d
}

// orLongerSets splits ps by family into two or-longer prefix sets; a set is
// nil when its family has no prefix (GoBGP cannot hold an empty set's
// family, and a statement on it would be dead).
func orLongerSets(name4, name6 string, ps []netip.Prefix) (v4, v6 *api.DefinedSet) {
	for _, p := range ps {
		d := &v6
		name := name6
		if p.Addr().Is4() {
			d, name = &v4, name4
		}
		if *d == nil {
			*d = &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name}
		}
		(*d).Prefixes = append((*d).Prefixes, orLongerPrefix(p))
	}
	return v4, v6
}

// neighborGroup names a neighbour set by kind and, optionally, family.
type neighborGroup struct {
	kind NeighborKind
	fam  int // 0 any, 4 or 6
}

func (g neighborGroup) name() string {
	if g.fam == 0 {
		return "roam-neighbors-" + g.kind.String()
	}
	return fmt.Sprintf("roam-neighbors-%s-v%d", g.kind, g.fam)
}

func (g neighborGroup) has(n Neighbor) bool {
	return n.Kind == g.kind && (g.fam == 0 || (g.fam == 4) == n.Address.Is4())
}

// set is g's neighbour set with members (all of them, or those to add or
// remove).
func (g neighborGroup) set(members []string) *api.DefinedSet {
	return &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: g.name(), List: members}
}

// neighborGroups are all the groups, in the order their sets are
// installed.
var neighborGroups = []neighborGroup{
	{KindRoam, 0}, {KindRoam, 4}, {KindRoam, 6},
	{KindExternal, 0}, {KindExternal, 4}, {KindExternal, 6},
}

// neighborSets returns the members (host prefixes, in the order of ns) of
// the non-empty neighbour sets by group. GoBGP treats an empty neighbour set
// as matching every neighbour, so empty groups get no set and no statement.
func neighborSets(ns []Neighbor) map[neighborGroup][]string {
	out := make(map[neighborGroup][]string)
	for _, g := range neighborGroups {
		for _, n := range ns {
			if g.has(n) {
				out[g] = append(out[g], netip.PrefixFrom(n.Address, n.Address.BitLen()).String())
			}
		}
	}
	return out
}

// groupsOf is the set of groups with members in sets.
func groupsOf(sets map[neighborGroup][]string) map[neighborGroup]bool {
	out := make(map[neighborGroup]bool, len(sets))
	for g := range sets {
		out[g] = true
	}
	return out
}

func matchAny(name string) *api.MatchSet {
	return &api.MatchSet{Type: api.MatchSet_ANY, Name: name}
}

func statement(name string, c *api.Conditions, a *api.Actions) *api.Statement {
	return &api.Statement{Name: name, Conditions: c, Actions: a}
}

func routeAction(a api.RouteAction) *api.Actions { return &api.Actions{RouteAction: a} }

// policySpec is everything the policies are built from.
type policySpec struct {
	transit bool
	rules   importRules
	sets    []*api.DefinedSet // prefix sets that exist, by name below
	has     map[string]bool   // names of the sets in sets
	// groups are the neighbour groups the policies have statements for:
	// those with members. Run and SetNeighbors set it (under
	// Speaker.nbrMu) as they install the policies.
	groups   map[neighborGroup]bool
	tagRoam  string
	tagExtnl string
}

func newPolicySpec(c *Config) *policySpec {
	ps := &policySpec{
		transit: c.Transit, rules: newImportRules(c),
		has: make(map[string]bool), groups: groupsOf(neighborSets(c.Neighbors)),
		tagRoam: tagRoam(c.ASN), tagExtnl: tagExternal(c.ASN),
	}
	add := func(ds ...*api.DefinedSet) {
		for _, d := range ds {
			if d != nil {
				ps.sets = append(ps.sets, d)
				ps.has[d.Name] = true
			}
		}
	}
	add(prefixSet(setOriginated4), prefixSet(setOriginated6))
	add(prefixSet(setDefault4, netip.MustParsePrefix("0.0.0.0/0")), prefixSet(setDefault6, netip.MustParsePrefix("::/0")))
	add(orLongerSets(setMartian4, setMartian6, martians))
	add(orLongerSets(setOverlay4, setOverlay6, c.OverlayPool))
	add(orLongerSets(setInternal4, setInternal6, c.InternalPrefixes))
	add(&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: setTags, List: []string{ps.tagRoam, ps.tagExtnl}},
		&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: setTagRoam, List: []string{ps.tagRoam}},
		&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: setTagExternal, List: []string{ps.tagExtnl}})
	return ps
}

// importPolicy, in order (the order rejectReason mirrors):
//
//	locally originated paths: accept
//	a neighbour's path for a prefix we originate: reject (own)
//	default routes unless AcceptDefault: reject (default)
//	martians, or longer: reject (martian)
//	inside the overlay pool, or longer: reject (overlay)
//	inside InternalPrefixes from an external neighbour: reject (internal)
//	strip our source tags from whatever the neighbour sent
//	from a roam neighbour: tag roam-learned, accept
//	from an external neighbour: tag external-learned, accept
//	anything else: the REJECT default
//
// The policy is named name and its statements name-<rule>.
func (ps *policySpec) importPolicy(name string) *api.Policy {
	var st []*api.Statement
	add := func(rule string, c *api.Conditions, a *api.Actions) {
		st = append(st, statement(name+"-"+rule, c, a))
	}
	reject := routeAction(api.RouteAction_REJECT)
	add("local", &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL}, routeAction(api.RouteAction_ACCEPT))
	add("own-v4", &api.Conditions{PrefixSet: matchAny(setOriginated4)}, reject)
	add("own-v6", &api.Conditions{PrefixSet: matchAny(setOriginated6)}, reject)
	if !ps.rules.acceptDefault {
		add("default-v4", &api.Conditions{PrefixSet: matchAny(setDefault4)}, reject)
		add("default-v6", &api.Conditions{PrefixSet: matchAny(setDefault6)}, reject)
	}
	for _, set := range []string{setMartian4, setMartian6, setOverlay4, setOverlay6} {
		if ps.has[set] {
			add(set[len("roam-"):], &api.Conditions{PrefixSet: matchAny(set)}, reject)
		}
	}
	if ext := (neighborGroup{KindExternal, 0}); ps.groups[ext] {
		for _, set := range []string{setInternal4, setInternal6} {
			if ps.has[set] {
				add(set[len("roam-"):]+"-from-external", &api.Conditions{PrefixSet: matchAny(set), NeighborSet: matchAny(ext.name())}, reject)
			}
		}
	}
	add("untag", &api.Conditions{LargeCommunitySet: matchAny(setTags)}, &api.Actions{
		LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: []string{ps.tagRoam, ps.tagExtnl}},
	})
	tagged := func(tag string) *api.Actions {
		return &api.Actions{RouteAction: api.RouteAction_ACCEPT,
			LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: []string{tag}}}
	}
	if g := (neighborGroup{KindRoam, 0}); ps.groups[g] {
		add("from-roam", &api.Conditions{NeighborSet: matchAny(g.name())}, tagged(ps.tagRoam))
	}
	if g := (neighborGroup{KindExternal, 0}); ps.groups[g] {
		add("from-external", &api.Conditions{NeighborSet: matchAny(g.name())}, tagged(ps.tagExtnl))
	}
	return &api.Policy{Name: name, Statements: st}
}

// exportPolicy decides per destination neighbour, in order:
//
//	to an external neighbour of family f:
//	  originated prefixes of family f: next-hop-self, accept
//	  with Transit, roam-learned routes of family f: next-hop-self, accept
//	  anything else: reject
//	to a roam neighbour:
//	  originated prefixes (any family): accept, announced next hop kept
//	  with Transit, learned routes (roam or external) of the session's
//	  family: next-hop-self, accept
//	anything else: the REJECT default
//
// Learned routes leave only over sessions of their own family because
// next-hop-self puts the session's address in the next hop. The policy is
// named name and its statements name-<rule>.
func (ps *policySpec) exportPolicy(name string) *api.Policy {
	var st []*api.Statement
	add := func(rule string, c *api.Conditions, a *api.Actions) {
		st = append(st, statement(name+"-"+rule, c, a))
	}
	selfAccept := func(untag bool) *api.Actions {
		a := &api.Actions{RouteAction: api.RouteAction_ACCEPT, Nexthop: &api.NexthopAction{Self: true}}
		if untag {
			a.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: []string{ps.tagRoam, ps.tagExtnl}}
		}
		return a
	}
	local := api.Conditions_ROUTE_TYPE_LOCAL
	fams := []struct {
		n          int
		originated string
		family     *api.Family
	}{{4, setOriginated4, family4}, {6, setOriginated6, family6}}
	for _, f := range fams {
		g := neighborGroup{KindExternal, f.n}
		if !ps.groups[g] {
			continue
		}
		add(fmt.Sprintf("originated-v%d-to-external", f.n),
			&api.Conditions{RouteType: local, PrefixSet: matchAny(f.originated), NeighborSet: matchAny(g.name())}, selfAccept(false))
		if ps.transit {
			add(fmt.Sprintf("transit-roam-v%d-to-external", f.n),
				&api.Conditions{LargeCommunitySet: matchAny(setTagRoam), AfiSafiIn: []*api.Family{f.family}, NeighborSet: matchAny(g.name())}, selfAccept(true))
		}
	}
	if g := (neighborGroup{KindExternal, 0}); ps.groups[g] {
		add("rest-to-external", &api.Conditions{NeighborSet: matchAny(g.name())}, routeAction(api.RouteAction_REJECT))
	}
	add("originated-v4", &api.Conditions{RouteType: local, PrefixSet: matchAny(setOriginated4)}, routeAction(api.RouteAction_ACCEPT))
	add("originated-v6", &api.Conditions{RouteType: local, PrefixSet: matchAny(setOriginated6)}, routeAction(api.RouteAction_ACCEPT))
	if ps.transit {
		for _, f := range fams {
			if g := (neighborGroup{KindRoam, f.n}); ps.groups[g] {
				add(fmt.Sprintf("transit-v%d-to-roam", f.n),
					&api.Conditions{LargeCommunitySet: matchAny(setTags), AfiSafiIn: []*api.Family{f.family}, NeighborSet: matchAny(g.name())}, selfAccept(true))
			}
		}
	}
	return &api.Policy{Name: name, Statements: st}
}

// installPolicies sets up the defined sets (the neighbour sets with
// members) and the global import and export policies with REJECT defaults,
// each after its quality policy (without statements until SetQuality).
// It must run after StartBgp (which resets GoBGP's routing policy) and
// before the first AddPeer (GoBGP's default global export is ACCEPT).
func installPolicies(ctx context.Context, s *server.BgpServer, ps *policySpec, members map[neighborGroup][]string) error {
	sets := slices.Clone(ps.sets)
	for _, g := range neighborGroups {
		if m := members[g]; len(m) > 0 {
			sets = append(sets, g.set(m))
		}
	}
	for _, d := range sets {
		if err := s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: d}); err != nil {
			return fmt.Errorf("bgp: add defined set %s: %w", d.Name, err)
		}
	}
	if err := installQualityPolicies(ctx, s); err != nil {
		return err
	}
	ps.groups = groupsOf(members)
	for _, dir := range policyDirections {
		if err := assignPolicy(ctx, s, dir, ps.policy(dir, policyName(dir))); err != nil {
			return err
		}
	}
	return nil
}

var policyDirections = []api.PolicyDirection{api.PolicyDirection_IMPORT, api.PolicyDirection_EXPORT}

// policyName is the name of the global policy of direction dir.
func policyName(dir api.PolicyDirection) string {
	if dir == api.PolicyDirection_IMPORT {
		return policyImport
	}
	return policyExport
}

// policy is the global policy of direction dir, named name.
func (ps *policySpec) policy(dir api.PolicyDirection, name string) *api.Policy {
	if dir == api.PolicyDirection_IMPORT {
		return ps.importPolicy(name)
	}
	return ps.exportPolicy(name)
}

// assignPolicy adds p and makes the quality policy of direction dir, then
// p, the global policies of that direction, in place of any others, with a
// REJECT default. GoBGP evaluates them in order, the next when one ends
// without a route action, and replaces the assignment in one step: no
// route is evaluated without a policy in between.
func assignPolicy(ctx context.Context, s *server.BgpServer, dir api.PolicyDirection, p *api.Policy) error {
	if err := s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: p}); err != nil {
		return fmt.Errorf("bgp: add policy %s: %w", p.Name, err)
	}
	err := s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name:          "global",
		Direction:     dir,
		Policies:      []*api.Policy{{Name: qualityPolicyName(dir)}, {Name: p.Name}},
		DefaultAction: api.RouteAction_REJECT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: assign policy %s: %w", p.Name, err)
	}
	return nil
}

// stagedSuffix names the copy of a policy that stands in while the policy
// is rebuilt.
const stagedSuffix = "-staged"

// rebuildPolicies replaces the global import and export policies with those
// built from ps (for neighbour groups groups) while they stay assigned.
// GoBGP v3.37.0 cannot change a policy's statements in place except by
// appending, and DeletePolicy refuses an assigned export policy (an assigned
// import policy it deletes, checking export assignments twice, while the
// assignment goes on using it), so each policy is swapped twice: a copy
// under a staged name is assigned in its place, the old one deleted and
// rebuilt, assigned again, and the copy deleted. DeletePolicy also deletes
// the policy's statements. Every step leaves a complete policy assigned.
func rebuildPolicies(ctx context.Context, s *server.BgpServer, ps *policySpec, groups map[neighborGroup]bool) error {
	next := *ps
	next.groups = groups
	for _, dir := range policyDirections {
		name := policyName(dir)
		for _, swap := range []struct{ in, out string }{{name + stagedSuffix, name}, {name, name + stagedSuffix}} {
			if err := assignPolicy(ctx, s, dir, next.policy(dir, swap.in)); err != nil {
				return err
			}
			if err := s.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: swap.out}, All: true}); err != nil {
				return fmt.Errorf("bgp: delete policy %s: %w", swap.out, err)
			}
		}
	}
	ps.groups = groups
	return nil
}
