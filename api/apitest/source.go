package apitest

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

// Source is an in-memory api.Source. The zero value answers with an empty
// Status and no peers. It is safe for concurrent use.
type Source struct {
	// mu guards the fields below it.
	mu     sync.Mutex
	status *roampb.Status
	peers  []*roampb.Peer
	err    error
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
	s.peers = s.peers[:0]
	for _, p := range peers {
		s.peers = append(s.peers, proto.Clone(p).(*roampb.Peer))
	}
}

// SetErr makes Status and Peers fail with err; nil makes them answer again.
func (s *Source) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
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
	resp := &roampb.ListPeersResponse{}
	for _, p := range s.peers {
		resp.Peers = append(resp.Peers, proto.Clone(p).(*roampb.Peer))
	}
	return resp, nil
}
