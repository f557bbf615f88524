package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Quality is what in-tunnel probes measured of the tunnel to a roam neighbour.
type Quality struct {
	// Down: the tunnel is down. The session is shut (GoBGP DisablePeer,
	// communication "roam: tunnel down"), so the neighbour's routes leave
	// the RIB (and roamd's FIB) at once and traffic moves to the next best
	// path; Down false again enables it (see SetQuality).
	Down bool
	// Cost is the link cost (babeld-style: 256 for a perfect link, more for
	// a worse one, 65535 dead); 0 = not measured yet: no local-pref or MED is
	// set for the neighbour.
	Cost uint16
}

// LocalPref returns the local-pref a cost gives: 100*256/cost rounded to
// nearest, at least 1 (a perfect tunnel gets BGP's default 100). Cost 0 (not
// measured) gives 100 too, as no local-pref is set and BGP assumes 100.
func LocalPref(cost uint16) uint32 {
	if cost == 0 {
		return 100
	}
	c := uint32(cost)
	return max((100*256+c/2)/c, 1)
}

// SetQuality records q for the roam neighbour at addr and applies it while
// Run runs: routes learned from the neighbour get local-pref
// LocalPref(q.Cost), and routes sent to it carry MED q.Cost (with Cost 0,
// neither is set). Only that neighbour's routes are evaluated again, by a
// soft reset in both directions: a new cost never resets the session. With
// q.Down the session is shut and stays down until a call with Down false.
// A call that changes nothing does nothing.
//
// The quality is remembered by address: it applies when Run starts, and
// again when SetNeighbors removes the neighbour and adds it back. An
// address that is not a configured neighbour is remembered and nil is
// returned, as the neighbour may be configured later. Only KindRoam
// neighbours are affected: an external neighbour at addr keeps its session
// and attributes (the quality applies if it is reconfigured as a roam
// neighbour).
//
// While down, Neighbors shows the neighbour "idle (admin down)". Coming
// back up, GoBGP accepts or opens a connection at once; the session is
// established when the neighbour next dials (or answers).
//
// It fails if GoBGP refuses a change or does not take a shutdown within
// adminStateWait (2 s). The quality stays recorded, and a later call (with
// the same value too) completes it.
func (s *Speaker) SetQuality(ctx context.Context, addr netip.Addr, q Quality) error {
	if !addr.IsValid() {
		return errors.New("bgp: set quality: invalid neighbor address")
	}
	s.nbrMu.Lock()
	defer s.nbrMu.Unlock()
	old := s.quality.want[addr]
	if s.quality.want == nil {
		s.quality.want = make(map[netip.Addr]Quality)
	}
	if q == (Quality{}) {
		delete(s.quality.want, addr)
	} else {
		s.quality.want[addr] = q
	}
	n, configured := s.nbrs.get(addr)
	applies := configured && n.Kind == KindRoam
	if old != q {
		s.logQuality(addr, old, q, applies)
	}
	if s.peering == nil || !applies {
		return nil
	}
	return s.applyQualityLocked(ctx, s.peering, n)
}

// logQuality logs a change of the quality recorded for addr.
func (s *Speaker) logQuality(addr netip.Addr, old, q Quality, applies bool) {
	attrs := []any{"neighbor", addr}
	if old.Down != q.Down {
		attrs = append(attrs, "state", upDown(old.Down)+" -> "+upDown(q.Down))
	}
	if old.Cost != q.Cost {
		attrs = append(attrs, "cost", fmt.Sprintf("%d -> %d", old.Cost, q.Cost),
			"local_pref", localPrefText(old.Cost)+" -> "+localPrefText(q.Cost))
	}
	if !applies {
		attrs = append(attrs, "applies", false) // not a configured roam neighbour (yet)
	}
	s.log.Info("bgp: neighbor quality", attrs...)
}

func upDown(down bool) string {
	if down {
		return "down"
	}
	return "up"
}

func localPrefText(cost uint16) string {
	if cost == 0 {
		return "none"
	}
	return fmt.Sprint(LocalPref(cost))
}

// Names of the quality policies, assigned before roam-import and
// roam-export. Each roam neighbour with a cost has a one-member neighbour
// set and, in each policy, a statement matching it that sets local-pref
// (import) or MED (export) and has no route action, so that evaluation goes
// on to the roam policies.
const (
	policyQualityImport = "roam-quality-import"
	policyQualityExport = "roam-quality-export"
)

// qualityPolicyName is the quality policy of direction dir.
func qualityPolicyName(dir api.PolicyDirection) string {
	if dir == api.PolicyDirection_IMPORT {
		return policyQualityImport
	}
	return policyQualityExport
}

// qualitySetName is the neighbour set holding only addr.
func qualitySetName(addr netip.Addr) string { return "roam-quality-" + addr.String() }

// qualityStatementPrefix starts the names of addr's statements in the
// quality policy of direction dir.
func qualityStatementPrefix(dir api.PolicyDirection, addr netip.Addr) string {
	return qualityPolicyName(dir) + "-" + addr.String() + "-cost-"
}

// qualityStatement is addr's statement for cost in the quality policy of
// direction dir. Its name holds the cost, so that a new cost's statement can
// join the policy before the old one leaves.
func qualityStatement(dir api.PolicyDirection, addr netip.Addr, cost uint16) *api.Statement {
	a := &api.Actions{Med: &api.MedAction{Type: api.MedAction_REPLACE, Value: int64(cost)}}
	if dir == api.PolicyDirection_IMPORT {
		a = &api.Actions{LocalPref: &api.LocalPrefAction{Value: LocalPref(cost)}}
	}
	return statement(fmt.Sprintf("%s%d", qualityStatementPrefix(dir, addr), cost),
		&api.Conditions{NeighborSet: matchAny(qualitySetName(addr))}, a)
}

// installQualityPolicies adds the quality policies, without statements.
func installQualityPolicies(ctx context.Context, s *server.BgpServer) error {
	for _, dir := range policyDirections {
		name := qualityPolicyName(dir)
		if err := s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: name}}); err != nil {
			return fmt.Errorf("bgp: add policy %s: %w", name, err)
		}
	}
	return nil
}

// qualityState is what the speaker knows of its neighbours' link quality.
// Speaker.nbrMu guards it.
type qualityState struct {
	// want is the quality SetQuality last recorded, by address; kept
	// across Run and while the address is not configured.
	want map[netip.Addr]Quality
	// cost is the cost whose statements are in Speaker.peering's quality
	// policies, by neighbour address (set when Run starts).
	cost map[netip.Addr]uint16
	// unsure are addresses whose statements a failed change may have left
	// in any state: the next change clears them first.
	unsure map[netip.Addr]bool
	// held are the neighbours Speaker.peering holds administratively down
	// for their quality.
	held map[netip.Addr]bool
}

// reset forgets what was installed in a GoBGP server.
func (q *qualityState) reset() {
	q.cost, q.unsure, q.held = make(map[netip.Addr]uint16), make(map[netip.Addr]bool), make(map[netip.Addr]bool)
}

// of is the quality that applies to n: none unless n is a roam neighbour.
func (q *qualityState) of(n Neighbor) Quality {
	if n.Kind != KindRoam {
		return Quality{}
	}
	return q.want[n.Address]
}

// addPeerLocked adds n to srv, administratively down if its quality says
// down.
func (s *Speaker) addPeerLocked(ctx context.Context, srv *server.BgpServer, n Neighbor, restarting bool) error {
	p := s.peer(n, restarting)
	down := s.quality.of(n).Down
	p.Conf.AdminDown = down
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		return err
	}
	if down {
		s.quality.held[n.Address] = true
	}
	return nil
}

// syncQualityLocked makes srv's quality statements those of the roam
// neighbours in next, before the neighbours in starting (a subset of next)
// are added. Neighbours that keep their session get their whole quality
// (cost, session state) applied: it differs from what srv has only after a
// failed SetQuality.
func (s *Speaker) syncQualityLocked(ctx context.Context, srv *server.BgpServer, next, starting []Neighbor) error {
	stay := make(map[netip.Addr]bool, len(next))
	for _, n := range next {
		stay[n.Address] = n.Kind == KindRoam
	}
	var gone []netip.Addr
	for a := range s.quality.cost {
		if !stay[a] {
			gone = append(gone, a)
		}
	}
	for a := range s.quality.unsure {
		if !stay[a] && !slices.Contains(gone, a) {
			gone = append(gone, a)
		}
	}
	slices.SortFunc(gone, netip.Addr.Compare)
	for _, a := range gone {
		if _, err := s.setCostLocked(ctx, srv, a, 0); err != nil {
			return err
		}
	}
	for _, n := range next {
		var err error
		if slices.Contains(starting, n) {
			_, err = s.setCostLocked(ctx, srv, n.Address, s.quality.of(n).Cost)
		} else {
			err = s.applyQualityLocked(ctx, srv, n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyQualityLocked makes srv apply n's quality: its cost statements, then
// its session shut or opened again, or, if only the cost changed, a soft
// reset of its routes both ways.
func (s *Speaker) applyQualityLocked(ctx context.Context, srv *server.BgpServer, n Neighbor) error {
	q := s.quality.of(n)
	changed, err := s.setCostLocked(ctx, srv, n.Address, q.Cost)
	if err != nil {
		return err
	}
	held := s.quality.held[n.Address]
	switch {
	case q.Down && !held:
		return s.shutLocked(ctx, srv, n)
	case !q.Down && held:
		return s.reopenLocked(ctx, srv, n)
	case changed && !q.Down:
		// Import: routes already received get the new local-pref (from
		// GoBGP's adj-RIB-in; nothing is asked of the neighbour). Export:
		// GoBGP never sends routes again when a policy changes.
		err := srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: n.Address.String(), Soft: true, Direction: api.ResetPeerRequest_BOTH})
		if err != nil {
			return fmt.Errorf("bgp: re-apply policies to neighbor %s after its cost changed: %w", n.Address, err)
		}
	}
	return nil
}

// adminStateWait bounds how long shutLocked waits for GoBGP to take the
// shutdown.
const adminStateWait = 2 * time.Second

// shutLocked shuts the session with n and drops n's routes. DisablePeer
// sends the neighbour a Cease (administrative shutdown, "roam: tunnel
// down"), after which GoBGP refuses its connections. Once GoBGP has taken
// that (it queues one admin state request per neighbour and drops, with
// only a warning, one made while another is queued) and the session is no
// longer established, the neighbour is deleted and added back
// administratively down: with graceful restart, GoBGP v3.37.0 may record
// the end of the session as a restart and keep n's routes as stale for the
// restart time, when its Cease loses the race with the read error of the
// connection n closes on receiving it, or when the hold timer ended the
// session before; deleting the neighbour drops them.
func (s *Speaker) shutLocked(ctx context.Context, srv *server.BgpServer, n Neighbor) error {
	addr := n.Address.String()
	fail := func(err error) error { return fmt.Errorf("bgp: shut session with neighbor %s: %w", n.Address, err) }
	if err := srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr, Communication: "roam: tunnel down"}); err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(adminStateWait)
	for {
		down := false
		err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(p *api.Peer) {
			st := p.GetState()
			down = st.GetAdminState() == api.PeerState_DOWN && st.GetSessionState() != api.PeerState_ESTABLISHED
		})
		if err != nil {
			return fail(err)
		}
		if down {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("GoBGP did not take the shutdown within %v", adminStateWait))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.quality.held[n.Address] = true // down, whatever happens next
	if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
		return fail(err)
	}
	p := s.peer(n, false)
	p.Conf.AdminDown = true
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		return fail(err)
	}
	return nil
}

// reopenLocked lets the session with n (held down by shutLocked) come up
// again. It deletes and adds the neighbour rather than EnablePeer: GoBGP
// v3.37.0 waits a fixed 5 s (not the configured IdleHoldTime) in idle after
// EnablePeer before it accepts or opens a connection, while a new
// neighbour does so at once. The neighbour is down, so deleting it ends no
// session and drops no route. If the neighbour is missing (a failed
// shutLocked deleted it), it is only added.
func (s *Speaker) reopenLocked(ctx context.Context, srv *server.BgpServer, n Neighbor) error {
	listed := false
	err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: n.Address.String()}, func(*api.Peer) { listed = true })
	if err != nil {
		return fmt.Errorf("bgp: reopen session with neighbor %s: %w", n.Address, err)
	}
	if listed {
		if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Address.String()}); err != nil {
			return fmt.Errorf("bgp: reopen session with neighbor %s: %w", n.Address, err)
		}
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peer(n, false)}); err != nil {
		return fmt.Errorf("bgp: reopen session with neighbor %s: %w", n.Address, err)
	}
	delete(s.quality.held, n.Address)
	return nil
}

// setCostLocked makes addr's statements in srv's quality policies those of
// cost (none for 0) and reports whether they changed. A new cost's
// statements join the policies before the old ones leave, and both set the
// same attribute, the later winning: every route is evaluated with the old
// cost or the new one.
//
// GoBGP v3.37.0 changes an assigned policy in place: AddPolicy with an
// existing name appends statements, DeletePolicy with All false removes the
// statements named. The latter leaves the removed statements defined
// (DeleteStatement drops them); a statement of the same name cannot be
// added while one is defined.
func (s *Speaker) setCostLocked(ctx context.Context, srv *server.BgpServer, addr netip.Addr, cost uint16) (changed bool, err error) {
	if s.quality.unsure[addr] {
		if err := clearQuality(ctx, srv, addr); err != nil {
			return false, err
		}
		delete(s.quality.cost, addr)
		delete(s.quality.unsure, addr)
		changed = true
	}
	old := s.quality.cost[addr]
	if old == cost {
		return changed, nil
	}
	defer func() {
		if err != nil {
			s.quality.unsure[addr] = true
		}
	}()
	set := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: qualitySetName(addr),
		List: []string{netip.PrefixFrom(addr, addr.BitLen()).String()}}
	if old == 0 {
		// No statement of ours uses a set of that name: replacing one left
		// by hand is safe.
		if err := srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set, Replace: true}); err != nil {
			return false, fmt.Errorf("bgp: add neighbor set %s: %w", set.Name, err)
		}
	}
	for _, dir := range policyDirections {
		name := qualityPolicyName(dir)
		if cost != 0 {
			st := qualityStatement(dir, addr, cost)
			if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: name, Statements: []*api.Statement{st}}}); err != nil {
				return false, fmt.Errorf("bgp: add statement %s to policy %s: %w", st.Name, name, err)
			}
		}
		if old != 0 {
			if err := removeStatement(ctx, srv, name, qualityStatement(dir, addr, old).Name); err != nil {
				return false, err
			}
		}
	}
	if cost == 0 {
		if err := srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set, All: true}); err != nil {
			return false, fmt.Errorf("bgp: delete neighbor set %s: %w", set.Name, err)
		}
		delete(s.quality.cost, addr)
	} else {
		s.quality.cost[addr] = cost
	}
	return true, nil
}

// removeStatement takes statement st out of policy and deletes it.
func removeStatement(ctx context.Context, srv *server.BgpServer, policy, st string) error {
	err := srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: policy, Statements: []*api.Statement{{Name: st}}}})
	if err != nil {
		return fmt.Errorf("bgp: remove statement %s from policy %s: %w", st, policy, err)
	}
	if err := srv.DeleteStatement(ctx, &api.DeleteStatementRequest{Statement: &api.Statement{Name: st}, All: true}); err != nil {
		return fmt.Errorf("bgp: delete statement %s: %w", st, err)
	}
	return nil
}

// clearQuality removes whatever statements for addr srv holds, in the
// quality policies or not, and addr's neighbour set.
func clearQuality(ctx context.Context, srv *server.BgpServer, addr netip.Addr) error {
	for _, dir := range policyDirections {
		prefix := qualityStatementPrefix(dir, addr)
		var names []string
		err := srv.ListStatement(ctx, &api.ListStatementRequest{}, func(st *api.Statement) {
			if strings.HasPrefix(st.Name, prefix) {
				names = append(names, st.Name)
			}
		})
		if err != nil {
			return fmt.Errorf("bgp: list statements: %w", err)
		}
		for _, name := range names {
			if err := removeStatement(ctx, srv, qualityPolicyName(dir), name); err != nil {
				return err
			}
		}
	}
	name := qualitySetName(addr)
	found := false
	err := srv.ListDefinedSet(ctx, &api.ListDefinedSetRequest{DefinedType: api.DefinedType_NEIGHBOR, Name: name}, func(d *api.DefinedSet) {
		found = found || d.Name == name
	})
	if err != nil {
		return fmt.Errorf("bgp: list neighbor sets: %w", err)
	}
	if found {
		err := srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: name}, All: true})
		if err != nil {
			return fmt.Errorf("bgp: delete neighbor set %s: %w", name, err)
		}
	}
	return nil
}
