package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
)

// Announce originates prefix with next hop nextHop (same family), replacing
// an earlier announcement of the same prefix. Before Run it is recorded and
// originated when Run starts. Without Config.Transit, only announced prefixes
// are ever exported.
func (s *Speaker) Announce(ctx context.Context, prefix netip.Prefix, nextHop netip.Addr) error {
	if !prefix.IsValid() || prefix != prefix.Masked() {
		return fmt.Errorf("bgp: announce %s: not a valid prefix with host bits clear", prefix)
	}
	if _, err := newPath(prefix, nextHop); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", prefix, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.originated[prefix]; ok && o.nextHop == nextHop && (s.srv == nil || o.uuid != nil) {
		return nil
	}
	_, had := s.originated[prefix]
	o := &origin{nextHop: nextHop}
	s.originated[prefix] = o
	if s.srv == nil {
		return nil
	}
	if err := s.originateLocked(ctx, prefix, o); err != nil {
		return err
	}
	if !had {
		return s.reimportLocked(ctx, prefix)
	}
	return nil
}

// isOriginated reports whether prefix is announced by this node.
func (s *Speaker) isOriginated(prefix netip.Prefix) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.originated[prefix]
	return ok
}

// reimportLocked runs every neighbour's routes through the import policy
// again (soft reset in, from GoBGP's adj-RIB-in) after prefix joined or left
// the originated set: GoBGP does not re-evaluate routes it already has when
// a set changes, so a neighbour's path for a prefix we start originating
// would stay in the RIB, and one for a prefix we stop originating would stay
// rejected until the neighbour happened to send it again.
func (s *Speaker) reimportLocked(ctx context.Context, prefix netip.Prefix) error {
	if s.nbrs.len() == 0 {
		return nil
	}
	err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: "", Soft: true, Direction: api.ResetPeerRequest_IN})
	if err != nil {
		return fmt.Errorf("bgp: %s: re-apply import policy: %w", prefix, err)
	}
	return nil
}

// originateLocked adds prefix to the originated set (so export accepts it)
// and then the path itself.
func (s *Speaker) originateLocked(ctx context.Context, prefix netip.Prefix, o *origin) error {
	path, err := newPath(prefix, o.nextHop)
	if err != nil {
		return fmt.Errorf("bgp: announce %s: %w", prefix, err)
	}
	err = s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: prefixSet(originatedSet(prefix), prefix)})
	if err != nil {
		return fmt.Errorf("bgp: announce %s: add to prefix set: %w", prefix, err)
	}
	resp, err := s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
	if err != nil {
		return fmt.Errorf("bgp: announce %s: add path: %w", prefix, err)
	}
	o.uuid = resp.GetUuid()
	s.log.Info("announced", "prefix", prefix, "next_hop", o.nextHop)
	return nil
}

// Withdraw stops originating prefix. It returns ErrNotAnnounced (wrapped) if
// prefix was not announced.
func (s *Speaker) Withdraw(ctx context.Context, prefix netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.originated[prefix]
	if !ok {
		return fmt.Errorf("bgp: withdraw %s: %w", prefix, ErrNotAnnounced)
	}
	delete(s.originated, prefix)
	if s.srv == nil || o.uuid == nil {
		return nil
	}
	var errs []error
	if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Uuid: o.uuid}); err != nil {
		errs = append(errs, fmt.Errorf("bgp: withdraw %s: delete path: %w", prefix, err))
	}
	err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: prefixSet(originatedSet(prefix), prefix)})
	if err != nil {
		errs = append(errs, fmt.Errorf("bgp: withdraw %s: remove from prefix set: %w", prefix, err))
	}
	if len(errs) == 0 {
		s.log.Info("withdrawn", "prefix", prefix)
	}
	if err := s.reimportLocked(ctx, prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
