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
	setNeighbors   = "roam-neighbors"
	policyImport   = "roam-import"
	policyExport   = "roam-export"
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

func prefixSet(name string, ps ...netip.Prefix) *api.DefinedSet {
	d := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name}
	for _, p := range ps {
		d.Prefixes = append(d.Prefixes, exactPrefix(p))
	}
	return d
}

func neighborSet(ns []Neighbor) *api.DefinedSet {
	d := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: setNeighbors}
	for _, n := range ns {
		d.List = append(d.List, netip.PrefixFrom(n.Address, n.Address.BitLen()).String())
	}
	return d
}

func matchAny(name string) *api.MatchSet {
	return &api.MatchSet{Type: api.MatchSet_ANY, Name: name}
}

func statement(name string, c *api.Conditions, a api.RouteAction) *api.Statement {
	return &api.Statement{Name: name, Conditions: c, Actions: &api.Actions{RouteAction: a}}
}

// importPolicy: accept what we originate ourselves, reject a peer's path for
// one of our own prefixes and default routes, accept the rest from configured
// neighbours; anything else falls to the REJECT default.
func importPolicy() *api.Policy {
	local := &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL}
	return &api.Policy{Name: policyImport, Statements: []*api.Statement{
		statement(policyImport+"-local", local, api.RouteAction_ACCEPT),
		statement(policyImport+"-own-v4", &api.Conditions{PrefixSet: matchAny(setOriginated4)}, api.RouteAction_REJECT),
		statement(policyImport+"-own-v6", &api.Conditions{PrefixSet: matchAny(setOriginated6)}, api.RouteAction_REJECT),
		statement(policyImport+"-default-v4", &api.Conditions{PrefixSet: matchAny(setDefault4)}, api.RouteAction_REJECT),
		statement(policyImport+"-default-v6", &api.Conditions{PrefixSet: matchAny(setDefault6)}, api.RouteAction_REJECT),
		statement(policyImport+"-neighbors", &api.Conditions{NeighborSet: matchAny(setNeighbors)}, api.RouteAction_ACCEPT),
	}}
}

// exportPolicy: accept only locally originated paths whose prefix is in the
// originated sets; everything else (learned routes) falls to REJECT.
func exportPolicy() *api.Policy {
	own := func(set string) *api.Conditions {
		return &api.Conditions{PrefixSet: matchAny(set), RouteType: api.Conditions_ROUTE_TYPE_LOCAL}
	}
	return &api.Policy{Name: policyExport, Statements: []*api.Statement{
		statement(policyExport+"-originated-v4", own(setOriginated4), api.RouteAction_ACCEPT),
		statement(policyExport+"-originated-v6", own(setOriginated6), api.RouteAction_ACCEPT),
	}}
}

// installPolicies sets up the defined sets and the global import and export
// policies with REJECT defaults. It must run after StartBgp (which resets
// GoBGP's routing policy) and before the first AddPeer (GoBGP's default
// global export is ACCEPT).
func installPolicies(ctx context.Context, s *server.BgpServer, ns []Neighbor) error {
	sets := []*api.DefinedSet{
		prefixSet(setOriginated4),
		prefixSet(setOriginated6),
		prefixSet(setDefault4, netip.MustParsePrefix("0.0.0.0/0")),
		prefixSet(setDefault6, netip.MustParsePrefix("::/0")),
		neighborSet(ns),
	}
	for _, d := range sets {
		if err := s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: d}); err != nil {
			return fmt.Errorf("bgp: add defined set %s: %w", d.Name, err)
		}
	}
	assign := []struct {
		dir api.PolicyDirection
		p   *api.Policy
	}{
		{api.PolicyDirection_IMPORT, importPolicy()},
		{api.PolicyDirection_EXPORT, exportPolicy()},
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
