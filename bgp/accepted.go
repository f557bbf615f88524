package bgp

import (
	"fmt"
	"net/netip"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
)

// acceptedPaths keeps, per neighbour, the prefixes the import policy let
// into the RIB, from GoBGP's post-policy adj-RIB-in watch (which sees every
// update, soft reset, stale marking and flush). GoBGP's own "accepted"
// count is taken before import policy, and counting the RIB with ListPath
// would read paths outside GoBGP's main loop.
type acceptedPaths struct {
	mu    sync.Mutex
	paths map[netip.Addr]map[netip.Prefix]bool
}

func newAcceptedPaths() *acceptedPaths {
	return &acceptedPaths{paths: make(map[netip.Addr]map[netip.Prefix]bool)}
}

func acceptedRequest() *api.WatchEventRequest {
	return &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
		{Type: api.WatchEventRequest_Table_Filter_POST_POLICY},
	}}}
}

func (a *acceptedPaths) handle(r *api.WatchEventResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range r.GetTable().GetPaths() {
		from, err := netip.ParseAddr(p.GetNeighborIp())
		if err != nil {
			continue
		}
		prefix, err := pathPrefix(p)
		if err != nil {
			continue
		}
		from = from.Unmap()
		m := a.paths[from]
		if p.GetIsWithdraw() {
			delete(m, prefix)
			continue
		}
		if m == nil {
			m = make(map[netip.Prefix]bool)
			a.paths[from] = m
		}
		m[prefix] = true
	}
}

func (a *acceptedPaths) count(from netip.Addr) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return uint64(len(a.paths[from]))
}

// pathPrefix returns the IP prefix of a path's NLRI.
func pathPrefix(p *api.Path) (netip.Prefix, error) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bgp: decode nlri: %w", err)
	}
	prefix, err := netip.ParsePrefix(nlri.String())
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bgp: nlri %q is not an IP prefix: %w", nlri.String(), err)
	}
	return prefix, nil
}
