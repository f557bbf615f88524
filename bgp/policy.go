package bgp

import (
	"context"
	"fmt"
	"net/netip"

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

// neighborSets returns the non-empty neighbour sets by group. GoBGP treats
// an empty neighbour set as matching every neighbour, so empty groups get
// no set and no statement.
func neighborSets(ns []Neighbor) map[neighborGroup]*api.DefinedSet {
	out := make(map[neighborGroup]*api.DefinedSet)
	for _, k := range []NeighborKind{KindRoam, KindExternal} {
		for _, fam := range []int{0, 4, 6} {
			g := neighborGroup{k, fam}
			d := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: g.name()}
			for _, n := range ns {
				if g.has(n) {
					d.List = append(d.List, netip.PrefixFrom(n.Address, n.Address.BitLen()).String())
				}
			}
			if len(d.List) > 0 {
				out[g] = d
			}
		}
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
	transit  bool
	rules    importRules
	sets     []*api.DefinedSet // prefix sets that exist, by name below
	has      map[string]bool   // names of the sets in sets
	nbrs     map[neighborGroup]*api.DefinedSet
	tagRoam  string
	tagExtnl string
}

func newPolicySpec(c *Config) *policySpec {
	ps := &policySpec{
		transit: c.Transit, rules: newImportRules(c),
		has: make(map[string]bool), nbrs: neighborSets(c.Neighbors),
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
	for _, k := range []NeighborKind{KindRoam, KindExternal} {
		for _, fam := range []int{0, 4, 6} {
			add(ps.nbrs[neighborGroup{k, fam}])
		}
	}
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
func (ps *policySpec) importPolicy() *api.Policy {
	var st []*api.Statement
	add := func(name string, c *api.Conditions, a *api.Actions) {
		st = append(st, statement(policyImport+"-"+name, c, a))
	}
	reject := routeAction(api.RouteAction_REJECT)
	add("local", &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL}, routeAction(api.RouteAction_ACCEPT))
	add("own-v4", &api.Conditions{PrefixSet: matchAny(setOriginated4)}, reject)
	add("own-v6", &api.Conditions{PrefixSet: matchAny(setOriginated6)}, reject)
	if !ps.rules.acceptDefault {
		add("default-v4", &api.Conditions{PrefixSet: matchAny(setDefault4)}, reject)
		add("default-v6", &api.Conditions{PrefixSet: matchAny(setDefault6)}, reject)
	}
	for _, name := range []string{setMartian4, setMartian6, setOverlay4, setOverlay6} {
		if ps.has[name] {
			add(name[len("roam-"):], &api.Conditions{PrefixSet: matchAny(name)}, reject)
		}
	}
	if ext, ok := ps.nbrs[neighborGroup{KindExternal, 0}]; ok {
		for _, name := range []string{setInternal4, setInternal6} {
			if ps.has[name] {
				add(name[len("roam-"):]+"-from-external", &api.Conditions{PrefixSet: matchAny(name), NeighborSet: matchAny(ext.Name)}, reject)
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
	if d, ok := ps.nbrs[neighborGroup{KindRoam, 0}]; ok {
		add("from-roam", &api.Conditions{NeighborSet: matchAny(d.Name)}, tagged(ps.tagRoam))
	}
	if d, ok := ps.nbrs[neighborGroup{KindExternal, 0}]; ok {
		add("from-external", &api.Conditions{NeighborSet: matchAny(d.Name)}, tagged(ps.tagExtnl))
	}
	return &api.Policy{Name: policyImport, Statements: st}
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
// next-hop-self puts the session's address in the next hop.
func (ps *policySpec) exportPolicy() *api.Policy {
	var st []*api.Statement
	add := func(name string, c *api.Conditions, a *api.Actions) {
		st = append(st, statement(policyExport+"-"+name, c, a))
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
		d, ok := ps.nbrs[neighborGroup{KindExternal, f.n}]
		if !ok {
			continue
		}
		add(fmt.Sprintf("originated-v%d-to-external", f.n),
			&api.Conditions{RouteType: local, PrefixSet: matchAny(f.originated), NeighborSet: matchAny(d.Name)}, selfAccept(false))
		if ps.transit {
			add(fmt.Sprintf("transit-roam-v%d-to-external", f.n),
				&api.Conditions{LargeCommunitySet: matchAny(setTagRoam), AfiSafiIn: []*api.Family{f.family}, NeighborSet: matchAny(d.Name)}, selfAccept(true))
		}
	}
	if d, ok := ps.nbrs[neighborGroup{KindExternal, 0}]; ok {
		add("rest-to-external", &api.Conditions{NeighborSet: matchAny(d.Name)}, routeAction(api.RouteAction_REJECT))
	}
	add("originated-v4", &api.Conditions{RouteType: local, PrefixSet: matchAny(setOriginated4)}, routeAction(api.RouteAction_ACCEPT))
	add("originated-v6", &api.Conditions{RouteType: local, PrefixSet: matchAny(setOriginated6)}, routeAction(api.RouteAction_ACCEPT))
	if ps.transit {
		for _, f := range fams {
			if d, ok := ps.nbrs[neighborGroup{KindRoam, f.n}]; ok {
				add(fmt.Sprintf("transit-v%d-to-roam", f.n),
					&api.Conditions{LargeCommunitySet: matchAny(setTags), AfiSafiIn: []*api.Family{f.family}, NeighborSet: matchAny(d.Name)}, selfAccept(true))
			}
		}
	}
	return &api.Policy{Name: policyExport, Statements: st}
}

// installPolicies sets up the defined sets and the global import and export
// policies with REJECT defaults. It must run after StartBgp (which resets
// GoBGP's routing policy) and before the first AddPeer (GoBGP's default
// global export is ACCEPT).
func installPolicies(ctx context.Context, s *server.BgpServer, ps *policySpec) error {
	for _, d := range ps.sets {
		if err := s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: d}); err != nil {
			return fmt.Errorf("bgp: add defined set %s: %w", d.Name, err)
		}
	}
	assign := []struct {
		dir api.PolicyDirection
		p   *api.Policy
	}{
		{api.PolicyDirection_IMPORT, ps.importPolicy()},
		{api.PolicyDirection_EXPORT, ps.exportPolicy()},
	}
	for _, a := range assign {
		if err := s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: a.p}); err != nil {
			return fmt.Errorf("bgp: add policy %s: %w", a.p.Name, err)
		}
		err := s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name:          "global",
			Direction:     a.dir,
			Policies:      []*api.Policy{{Name: a.p.Name}},
			DefaultAction: api.RouteAction_REJECT,
		}})
		if err != nil {
			return fmt.Errorf("bgp: assign policy %s: %w", a.p.Name, err)
		}
	}
	return nil
}
