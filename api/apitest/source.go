package apitest

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

// Source is an in-memory api.Source. The zero value answers with an empty
// Status, no peers, no BGP neighbours, no routes, no services and no links.
// It is safe for concurrent use.
//
// AddService adds a prefix to the services (adding one twice is no error)
// and DeleteService removes it (deleting one it does not have is no error
// either: make it fail with SetErr). Every call of AddService and
// DeleteService is recorded; see Calls.
type Source struct {
	// mu guards the fields below it.
	mu        sync.Mutex
	status    *roampb.Status
	peers     []*roampb.Peer
	neighbors []*roampb.BgpNeighbor
	routes    *roampb.ListRoutesResponse
	services  []netip.Prefix
	links     []*roampb.Link
	calls     []string
	err       error
	linksErr  error
}

// SetStatus sets what Status returns (a copy of st).
func (s *Source) SetStatus(st *roampb.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = proto.Clone(st).(*roampb.Status)
}

// SetPeers sets what Peers returns (copies of peers).
func (s *Source) SetPeers(peers ...*roampb.Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers = cloneAll(peers)
}

// SetNeighbors sets what BGPNeighbors returns (copies of ns).
func (s *Source) SetNeighbors(ns ...*roampb.BgpNeighbor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.neighbors = cloneAll(ns)
}

// SetRoutes sets what Routes returns (a copy of rs).
func (s *Source) SetRoutes(rs *roampb.ListRoutesResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes = proto.Clone(rs).(*roampb.ListRoutesResponse)
}

// SetServices sets the service prefixes, as if added in this order.
func (s *Source) SetServices(prefixes ...netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services = slices.Clone(prefixes)
}

// SetLinks sets what Links returns (copies of links).
func (s *Source) SetLinks(links ...*roampb.Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links = cloneAll(links)
}

// SetLinksErr makes Links alone fail with err, e.g. one wrapping
// api.ErrDisabled for a node without link probing; nil makes it answer
// again. An error set with SetErr comes first.
func (s *Source) SetLinksErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linksErr = err
}

// SetErr makes every method fail with err; nil makes them answer again.
func (s *Source) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Calls lists the calls of AddService and DeleteService so far, e.g.
// "AddService 10.96.0.0/24", including those that failed.
func (s *Source) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Status implements api.Source.
func (s *Source) Status(ctx context.Context) (*roampb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.status == nil {
		return &roampb.Status{}, nil
	}
	return proto.Clone(s.status).(*roampb.Status), nil
}

// Peers implements api.Source.
func (s *Source) Peers(ctx context.Context) (*roampb.ListPeersResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return &roampb.ListPeersResponse{Peers: cloneAll(s.peers)}, nil
}

// BGPNeighbors implements api.Source.
func (s *Source) BGPNeighbors(ctx context.Context) (*roampb.ListBgpNeighborsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return &roampb.ListBgpNeighborsResponse{Neighbors: cloneAll(s.neighbors)}, nil
}

// Routes implements api.Source.
func (s *Source) Routes(ctx context.Context) (*roampb.ListRoutesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.routes == nil {
		return &roampb.ListRoutesResponse{}, nil
	}
	return proto.Clone(s.routes).(*roampb.ListRoutesResponse), nil
}

// Services implements api.Source.
func (s *Source) Services(ctx context.Context) (*roampb.ListServicesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	resp := &roampb.ListServicesResponse{}
	for _, p := range s.services {
		resp.Services = append(resp.Services, &roampb.Service{Prefix: p.String()})
	}
	return resp, nil
}

// AddService implements api.Source.
func (s *Source) AddService(ctx context.Context, prefix netip.Prefix) (*roampb.Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("AddService %s", prefix))
	if s.err != nil {
		return nil, s.err
	}
	if !slices.Contains(s.services, prefix) {
		s.services = append(s.services, prefix)
	}
	return &roampb.Service{Prefix: prefix.String()}, nil
}

// DeleteService implements api.Source.
func (s *Source) DeleteService(ctx context.Context, prefix netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("DeleteService %s", prefix))
	if s.err != nil {
		return s.err
	}
	s.services = slices.DeleteFunc(s.services, func(p netip.Prefix) bool { return p == prefix })
	return nil
}

// Links implements api.Source.
func (s *Source) Links(ctx context.Context) (*roampb.ListLinksResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmp.Or(s.err, s.linksErr); err != nil {
		return nil, err
	}
	return &roampb.ListLinksResponse{Links: cloneAll(s.links)}, nil
}

// cloneAll deep-copies ms.
func cloneAll[M proto.Message](ms []M) []M {
	out := make([]M, 0, len(ms))
	for _, m := range ms {
		out = append(out, proto.Clone(m).(M))
	}
	return out
}
