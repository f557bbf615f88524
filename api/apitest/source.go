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
// Status, no peers, no BGP neighbours, no routes, no services, no links, no
// events and no paths. It is safe for concurrent use.
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

	events     []*roampb.HandoverEvent
	histograms []*roampb.HandoverHistogram
	lastID     uint64        // highest event ID set so far
	revision   uint64        // one more for each SetEvents and SetEventsErr
	changed    chan struct{} // closed on the next change; nil until waited on
	eventsErr  error
	paths      []*roampb.Path
	pathsErr   error
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

// SetEvents sets the events Events returns (copies of events, with IDs
// ascending), and counts a change: it wakes WaitEvents. The last ID Events
// reports is the highest ID set so far.
func (s *Source) SetEvents(events ...*roampb.HandoverEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = cloneAll(events)
	for _, e := range events {
		s.lastID = max(s.lastID, e.GetId())
	}
	s.changedLocked()
}

// SetHistograms sets the histograms Events returns (copies of hs).
func (s *Source) SetHistograms(hs ...*roampb.HandoverHistogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.histograms = cloneAll(hs)
}

// SetEventsErr makes Events and WaitEvents alone fail with err, e.g. one
// wrapping api.ErrDisabled for a node without mobility; nil makes them
// answer again. It wakes WaitEvents. An error set with SetErr comes first.
func (s *Source) SetEventsErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventsErr = err
	s.changedLocked()
}

// SetPaths sets what Paths returns (copies of paths).
func (s *Source) SetPaths(paths ...*roampb.Path) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = cloneAll(paths)
}

// SetPathsErr makes Paths alone fail with err, e.g. one wrapping
// api.ErrDisabled; nil makes it answer again. An error set with SetErr
// comes first.
func (s *Source) SetPathsErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pathsErr = err
}

// changedLocked counts a change of the events and wakes WaitEvents.
func (s *Source) changedLocked() {
	s.revision++
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
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

// Events implements api.Source: the events set with an ID above after.
func (s *Source) Events(ctx context.Context, after uint64) (*roampb.ListEventsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmp.Or(s.err, s.eventsErr); err != nil {
		return nil, err
	}
	resp := &roampb.ListEventsResponse{LastId: s.lastID, Revision: s.revision, Histograms: cloneAll(s.histograms)}
	for _, e := range s.events {
		if e.GetId() > after {
			resp.Events = append(resp.Events, proto.Clone(e).(*roampb.HandoverEvent))
		}
	}
	return resp, nil
}

// WaitEvents implements api.Source: it returns when a call of SetEvents or
// SetEventsErr has changed the revision from revision.
func (s *Source) WaitEvents(ctx context.Context, revision uint64) error {
	for {
		s.mu.Lock()
		if err := cmp.Or(s.err, s.eventsErr); err != nil {
			s.mu.Unlock()
			return err
		}
		if s.revision != revision {
			s.mu.Unlock()
			return nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Paths implements api.Source.
func (s *Source) Paths(ctx context.Context) (*roampb.ListPathsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmp.Or(s.err, s.pathsErr); err != nil {
		return nil, err
	}
	return &roampb.ListPathsResponse{Paths: cloneAll(s.paths)}, nil
}

// cloneAll deep-copies ms.
func cloneAll[M proto.Message](ms []M) []M {
	out := make([]M, 0, len(ms))
	for _, m := range ms {
		out = append(out, proto.Clone(m).(M))
	}
	return out
}
