package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// NeighborState is the state of one BGP session.
type NeighborState struct {
	Address     netip.Addr
	ASN         uint32
	Description string
	// State is the FSM state in lower case: "idle", "connect", "active",
	// "opensent", "openconfirm" or "established".
	State string
	// Uptime is how long the session has been established; 0 when it is not.
	Uptime time.Duration
	// Received and Accepted count prefixes from the neighbour over all
	// families, before and after import policy.
	Received, Accepted uint64
}

// Established reports whether the session is up.
func (n NeighborState) Established() bool { return n.State == "established" }

func neighborFromPeer(p *api.Peer, now time.Time) NeighborState {
	var n NeighborState
	if c := p.GetConf(); c != nil {
		n.Address, _ = netip.ParseAddr(c.NeighborAddress)
		n.ASN = c.PeerAsn
		n.Description = c.Description
	}
	if st := p.GetState(); st != nil {
		n.State = strings.ToLower(st.SessionState.String())
		if st.PeerAsn != 0 {
			n.ASN = st.PeerAsn
		}
	}
	if n.Established() {
		if up := p.GetTimers().GetState().GetUptime(); up != nil && up.GetSeconds() > 0 {
			n.Uptime = now.Sub(up.AsTime()).Truncate(time.Second)
		}
	}
	for _, af := range p.GetAfiSafis() {
		n.Received += af.GetState().GetReceived()
		n.Accepted += af.GetState().GetAccepted()
	}
	return n
}

// Neighbors lists the configured sessions and their state.
func (s *Speaker) Neighbors(ctx context.Context) ([]NeighborState, error) {
	srv, err := s.server()
	if err != nil {
		return nil, err
	}
	var out []NeighborState
	now := time.Now()
	err = srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		out = append(out, neighborFromPeer(p, now))
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list neighbors: %w", err)
	}
	return out, nil
}
