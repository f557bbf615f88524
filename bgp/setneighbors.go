package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// SetNeighbors makes ns the configured neighbours. It validates them as New
// does (with the same errors, naming indexes into ns) and changes nothing
// if one is invalid. Before Run, and after Run has returned, it only
// replaces the list.
//
// While Run is running it makes GoBGP's neighbours exactly ns: neighbours
// not in ns are removed (their sessions end with a Cease and their routes
// are withdrawn), new ones are added, and ones whose settings changed are
// removed and added again (a new session). Neighbours that did not change
// keep their sessions. When a group of neighbours (by kind and address
// family) gains its first member or loses its last, the import and export
// policies are rebuilt with or without that group's statements, and the
// routes already received are run through the import policy again (no
// session is reset). Neighbours added while running announce no graceful
// restart (Config.Restarting applies to those Run starts with).
//
// It fails if a new neighbour's password cannot be used (see
// Neighbor.Password) or GoBGP refuses a change; what was done until then
// stays, and a later call does the rest.
func (s *Speaker) SetNeighbors(ctx context.Context, ns []Neighbor) error {
	c := Config{MaxPrefixes: s.cfg.MaxPrefixes, Neighbors: slices.Clone(ns)}
	if err := c.validateNeighbors(); err != nil {
		return err
	}
	next := c.Neighbors
	sortNeighbors(next)
	s.nbrMu.Lock()
	defer s.nbrMu.Unlock()
	if s.peering == nil {
		s.nbrs.set(next)
		return nil
	}
	return s.applyNeighborsLocked(ctx, s.peering, next)
}

// applyNeighborsLocked takes srv from the neighbours in s.nbrs, the sets in
// s.members and the policies for s.policy.groups to next. Sessions end
// while the policies still know their neighbours' groups; then the sets and
// policies change (see planNeighborSets); then the new sessions start, once
// the policies know their groups. Each step is recorded as it succeeds.
//
// A changed neighbour is removed and added again rather than updated:
// GoBGP v3.37.0's UpdatePeer itself deletes and re-adds the neighbour for a
// change of anything but timers, multihop TTL and prefix limits (and it
// writes those without the session's lock); ASN, description, password,
// port, local address, passive mode and kind all need a new session anyway.
func (s *Speaker) applyNeighborsLocked(ctx context.Context, srv *server.BgpServer, next []Neighbor) error {
	d := diffNeighbors(s.nbrs.list(), next)
	want := neighborSets(next)
	plan := planNeighborSets(s.members, s.policy.groups, want)
	if d.empty() && len(plan) == 0 {
		return nil
	}
	starting := d.starting()
	for _, n := range starting {
		if n.Password == "" {
			continue
		}
		if err := probeTCPMD5(n.Address, n.Password, s.cfg.ListenPort != -1); err != nil {
			return fmt.Errorf("bgp: neighbor %s has a password, but %w", n.Address, err)
		}
	}

	for _, n := range d.ending() {
		if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Address.String()}); err != nil {
			return fmt.Errorf("bgp: remove neighbor %s: %w", n.Address, err)
		}
		s.nbrs.remove(n.Address)
		delete(s.quality.held, n.Address)
		if slices.Contains(d.removed, n) {
			s.log.Info("bgp: neighbor removed", "neighbor", n.Address, "kind", n.Kind, "description", n.Description)
		}
	}

	rebuilt, err := s.applySetsLocked(ctx, srv, plan, groupsOf(want))
	if err != nil {
		return err
	}
	if err := s.syncQualityLocked(ctx, srv, next, starting); err != nil {
		return err
	}

	changes := make(map[netip.Addr]string, len(d.changed))
	for _, c := range d.changed {
		changes[c.new.Address] = neighborChanges(c.old, c.new)
	}
	for _, n := range starting {
		s.nbrs.put(n) // first: the monitor looks the neighbour up in its first state event
		if err := s.addPeerLocked(ctx, srv, n, false); err != nil {
			s.nbrs.remove(n.Address)
			return fmt.Errorf("bgp: add neighbor %s: %w", n.Address, err)
		}
		if c, ok := changes[n.Address]; ok {
			s.log.Info("bgp: neighbor changed", "neighbor", n.Address, "kind", n.Kind, "description", n.Description, "changes", c)
		} else {
			s.log.Info("bgp: neighbor added", "neighbor", n.Address, "kind", n.Kind, "description", n.Description)
		}
	}

	// GoBGP never runs routes it holds through a policy again when the
	// policy changes. Routes from neighbours that stayed are matched by
	// statements of their own groups, which did not change; re-importing
	// (from GoBGP's adj-RIB-in: nothing is asked of the neighbours, and a
	// route whose outcome is the same is not announced again) makes the RIB
	// what the new policy says whatever the statements.
	if rebuilt && s.nbrs.len() > 0 {
		if err := srv.ResetPeer(ctx, &api.ResetPeerRequest{Soft: true, Direction: api.ResetPeerRequest_IN}); err != nil {
			return fmt.Errorf("bgp: re-apply import policy after a neighbor group changed: %w", err)
		}
	}
	return nil
}

// applySetsLocked runs plan, recording each step in s.members and
// s.policy.groups; groups are the groups with members after the plan. It
// reports whether the policies were rebuilt.
func (s *Speaker) applySetsLocked(ctx context.Context, srv *server.BgpServer, plan []setStep, groups map[neighborGroup]bool) (rebuilt bool, err error) {
	for _, st := range plan {
		g := st.group
		switch st.op {
		case setCreate:
			// No policy uses a set that is not in s.members: replacing
			// one left by hand (gobgp CLI) is safe.
			err = srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: g.set(st.members), Replace: true})
			if err == nil {
				s.members[g] = st.members
			}
		case setJoin:
			// Not Replace: GoBGP would put a new set in its table while
			// the policies keep the one they were built with. Without it,
			// the members are appended to the set the policies use.
			err = srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: g.set(st.members)})
			if err == nil {
				s.members[g] = append(slices.Clone(s.members[g]), st.members...)
			}
		case setPolicies:
			if err = rebuildPolicies(ctx, srv, s.policy, groups); err != nil {
				return false, err
			}
			rebuilt = true
			continue
		case setLeave:
			err = srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: g.set(st.members)})
			if err == nil {
				s.members[g] = slices.DeleteFunc(slices.Clone(s.members[g]), func(m string) bool { return slices.Contains(st.members, m) })
			}
		case setDrop:
			err = srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: g.set(nil), All: true})
			if err == nil {
				delete(s.members, g)
			}
		}
		if err != nil {
			return rebuilt, fmt.Errorf("bgp: %s neighbor set %s: %w", st.op, g.name(), err)
		}
	}
	return rebuilt, nil
}

// neighborDiff is how one neighbour list differs from another; each part is
// sorted by address.
type neighborDiff struct {
	added, removed []Neighbor
	changed        []neighborChange // same address, other settings
}

type neighborChange struct{ old, new Neighbor }

// diffNeighbors compares two neighbour lists with unique addresses.
func diffNeighbors(cur, next []Neighbor) neighborDiff {
	old := make(map[netip.Addr]Neighbor, len(cur))
	for _, n := range cur {
		old[n.Address] = n
	}
	var d neighborDiff
	for _, n := range next {
		o, ok := old[n.Address]
		delete(old, n.Address)
		switch {
		case !ok:
			d.added = append(d.added, n)
		case o != n:
			d.changed = append(d.changed, neighborChange{o, n})
		}
	}
	d.removed = slices.Collect(maps.Values(old))
	sortNeighbors(d.added)
	sortNeighbors(d.removed)
	slices.SortFunc(d.changed, func(a, b neighborChange) int { return a.new.Address.Compare(b.new.Address) })
	return d
}

func (d neighborDiff) empty() bool {
	return len(d.added) == 0 && len(d.removed) == 0 && len(d.changed) == 0
}

// ending are the sessions that end: removed neighbours and changed ones as
// they were, by address.
func (d neighborDiff) ending() []Neighbor {
	out := slices.Clone(d.removed)
	for _, c := range d.changed {
		out = append(out, c.old)
	}
	sortNeighbors(out)
	return out
}

// starting are the sessions that start: added neighbours and changed ones
// as they are now, by address.
func (d neighborDiff) starting() []Neighbor {
	out := slices.Clone(d.added)
	for _, c := range d.changed {
		out = append(out, c.new)
	}
	sortNeighbors(out)
	return out
}

// neighborChanges describes what differs between a and b as
// "field old -> new" items (never the password itself).
func neighborChanges(a, b Neighbor) string {
	var out []string
	field := func(name string, x, y any) {
		if x != y {
			out = append(out, fmt.Sprintf("%s %v -> %v", name, x, y))
		}
	}
	field("asn", a.ASN, b.ASN)
	field("kind", a.Kind, b.Kind)
	field("port", a.Port, b.Port)
	field("local_address", a.LocalAddress, b.LocalAddress)
	field("max_prefixes", a.MaxPrefixes, b.MaxPrefixes)
	if a.Password != b.Password {
		out = append(out, "password changed")
	}
	field("multihop", a.Multihop, b.Multihop)
	field("passive", a.Passive, b.Passive)
	field("description", fmt.Sprintf("%q", a.Description), fmt.Sprintf("%q", b.Description))
	return strings.Join(out, ", ")
}

// setOp is one kind of change to GoBGP's neighbour sets.
type setOp uint8

const (
	setCreate   setOp = iota + 1 // install the set of a group that gains its first members
	setJoin                      // add members to a set that has some
	setPolicies                  // rebuild the policies for the groups that will have members
	setLeave                     // remove members from a set that keeps others
	setDrop                      // delete the set of a group left without members
)

func (o setOp) String() string {
	switch o {
	case setCreate:
		return "create"
	case setJoin:
		return "add to"
	case setPolicies:
		return "rebuild policies for"
	case setLeave:
		return "remove from"
	case setDrop:
		return "delete"
	}
	return fmt.Sprintf("setOp(%d)", uint8(o))
}

// setStep is one change: op on group's set with members (the whole set for
// setCreate, those added or removed for setJoin and setLeave).
type setStep struct {
	op      setOp
	group   neighborGroup
	members []string
}

// planNeighborSets returns the steps that take GoBGP's neighbour sets from
// have to want (members by group, as neighborSets returns them) and its
// policies from statements for the groups inPolicy to statements for the
// groups of want. A set in use must never be empty (GoBGP matches every
// neighbour with an empty set) and a policy must never name a set that does
// not exist, so sets are created and joined first, then the policies are
// rebuilt if the groups with members change, then members leave and sets no
// policy uses any more are deleted.
func planNeighborSets(have map[neighborGroup][]string, inPolicy map[neighborGroup]bool, want map[neighborGroup][]string) []setStep {
	var grow, shrink []setStep
	for _, g := range neighborGroups {
		h, w := have[g], want[g]
		switch {
		case len(w) > 0 && len(h) == 0:
			grow = append(grow, setStep{setCreate, g, w})
		case len(w) > 0:
			if in := without(w, h); len(in) > 0 {
				grow = append(grow, setStep{setJoin, g, in})
			}
			if out := without(h, w); len(out) > 0 {
				shrink = append(shrink, setStep{setLeave, g, out})
			}
		case len(h) > 0:
			shrink = append(shrink, setStep{setDrop, g, nil})
		}
	}
	steps := grow
	if !maps.Equal(inPolicy, groupsOf(want)) {
		steps = append(steps, setStep{op: setPolicies})
	}
	return append(steps, shrink...)
}

// without returns the members of a that are not in b.
func without(a, b []string) []string {
	var out []string
	for _, m := range a {
		if !slices.Contains(b, m) {
			out = append(out, m)
		}
	}
	return out
}
