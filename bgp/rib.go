package bgp

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
)

// Routes lists every path in the global RIB (IPv4 and IPv6 unicast): learned
// ones that passed import policy and originated ones, with the best and
// stale flags.
//
// Routes and Advertised use GoBGP's ListPath, which in v3.37.0 converts the
// paths on the caller's goroutine while its own goroutines may rewrite parts
// of them (the stale flag during a neighbour's graceful restart, the source
// while a session re-opens): the race detector reports a call that overlaps
// either. Neighbors, Updates and the Collector do not have this problem.
func (s *Speaker) Routes(ctx context.Context) ([]Route, error) {
	return s.listPaths(ctx, api.TableType_GLOBAL, "")
}

// Advertised lists what the speaker currently sends to neighbour addr (its
// adj-RIB-out, after export policy).
func (s *Speaker) Advertised(ctx context.Context, addr netip.Addr) ([]Route, error) {
	return s.listPaths(ctx, api.TableType_ADJ_OUT, addr.String())
}

func (s *Speaker) listPaths(ctx context.Context, table api.TableType, name string) ([]Route, error) {
	srv, err := s.server()
	if err != nil {
		return nil, err
	}
	var out []Route
	var decodeErr error
	for _, f := range families {
		err := srv.ListPath(ctx, &api.ListPathRequest{TableType: table, Name: name, Family: f}, func(d *api.Destination) {
			for _, p := range d.Paths {
				r, err := routeFromPath(p)
				if err != nil {
					decodeErr = err
					continue
				}
				out = append(out, r)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("bgp: list %s paths %s: %w", table, name, err)
		}
	}
	if decodeErr != nil {
		return out, decodeErr
	}
	return out, nil
}
