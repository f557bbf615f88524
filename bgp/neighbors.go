package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// NeighborState is the state of one BGP session.
type NeighborState struct {
	Address     netip.Addr
	ASN         uint32
	Kind        NeighborKind
	Description string
	// State is the FSM state in lower case: "idle", "connect", "active",
	// "opensent", "openconfirm" or "established"; "idle (admin down)" when
	// the session is shut on purpose (SetQuality with Down, or `gobgp
	// neighbor ADDR disable`) and stays down until enabled.
	State string
	// Uptime is how long the session has been established; 0 when it is not.
	Uptime time.Duration
	// Received counts prefixes from the neighbour over all families, before
	// import policy; Accepted counts its paths in the RIB, after import
	// policy (stale ones included).
	Received, Accepted uint64
	// Advertised counts prefixes sent to the neighbour over all families.
	Advertised uint64
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
		if n.State == "idle" && st.AdminState == api.PeerState_DOWN {
			n.State = "idle (admin down)"
		}
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
		n := neighborFromPeer(p, now)
		c, _ := s.nbrs.get(n.Address)
		n.Kind = c.Kind
		out = append(out, n)
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list neighbors: %w", err)
	}
	// A configured neighbour GoBGP does not list (for a moment, while it is
	// deleted and added back after its prefix limit) is shown idle.
	for _, c := range s.nbrs.list() {
		if !slices.ContainsFunc(out, func(n NeighborState) bool { return n.Address == c.Address }) {
			out = append(out, NeighborState{Address: c.Address, ASN: c.ASN, Description: c.Description, Kind: c.Kind, State: "idle"})
		}
	}
	// GoBGP's own "accepted" count is taken before import policy (it only
	// leaves out AS-path loops): use what the post-policy watch saw.
	accepted := s.acceptedPaths()
	// ListPeer's EnableAdvertised counts GoBGP's End-of-RIB markers as
	// prefixes; the adj-RIB-out table summary does not.
	for i := range out {
		if accepted != nil {
			out[i].Accepted = accepted.count(out[i].Address)
		}
		if !out[i].Established() {
			continue
		}
		for _, f := range families {
			t, err := srv.GetTable(ctx, &api.GetTableRequest{TableType: api.TableType_ADJ_OUT, Name: out[i].Address.String(), Family: f})
			if err != nil {
				return nil, fmt.Errorf("bgp: count prefixes advertised to %s: %w", out[i].Address, err)
			}
			out[i].Advertised += t.GetNumPath()
		}
	}
	return out, nil
}
