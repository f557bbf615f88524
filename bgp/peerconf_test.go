package bgp

import (
	"context"
	"net/netip"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/goleak"
)

// listPeers returns GoBGP's own view of n's neighbours.
func listPeers(t *testing.T, n *node) map[netip.Addr]*api.Peer {
	t.Helper()
	srv, err := n.s.server()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[netip.Addr]*api.Peer)
	err = srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		out[netip.MustParseAddr(p.GetConf().GetNeighborAddress())] = p
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNeighborConfigReachesGoBGP: Multihop, Passive, LocalAddress, the
// prefix limit and graceful restart (with Restarting) as GoBGP holds them.
func TestNeighborConfigReachesGoBGP(t *testing.T) {
	before := goleak.IgnoreCurrent()
	multi, passive, plain := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::3")
	for _, tc := range []struct {
		name           string
		gr, restarting bool
	}{{"graceful restart, restarting", true, true}, {"graceful restart", true, false}, {"no graceful restart", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, "X", Config{
				ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1, MaxPrefixes: 50,
				DisableGracefulRestart: !tc.gr, Restarting: tc.restarting,
				Neighbors: []Neighbor{
					{Address: multi, ASN: 65001, Kind: KindExternal, Multihop: 3, LocalAddress: netip.MustParseAddr("192.0.2.100"), MaxPrefixes: 7},
					{Address: passive, ASN: asnB, Passive: true, Port: 1179},
					{Address: plain, ASN: asnC},
				},
			})
			startNodes(t, n)
			ps := listPeers(t, n)
			if p := ps[multi]; !p.GetEbgpMultihop().GetEnabled() || p.GetEbgpMultihop().GetMultihopTtl() != 3 ||
				p.GetTransport().GetPassiveMode() || p.GetTransport().GetLocalAddress() != "192.0.2.100" {
				t.Errorf("multihop neighbour in GoBGP: multihop %v, transport %v", p.GetEbgpMultihop(), p.GetTransport())
			}
			if p := ps[passive]; !p.GetTransport().GetPassiveMode() || p.GetEbgpMultihop().GetEnabled() || p.GetTransport().GetRemotePort() != 1179 {
				t.Errorf("passive neighbour in GoBGP: multihop %v, transport %v", p.GetEbgpMultihop(), p.GetTransport())
			}
			if p := ps[plain]; p.GetTransport().GetPassiveMode() || p.GetEbgpMultihop().GetEnabled() || p.GetTransport().GetRemotePort() != 179 {
				t.Errorf("plain neighbour in GoBGP: multihop %v, transport %v", p.GetEbgpMultihop(), p.GetTransport())
			}
			for addr, want := range map[netip.Addr]uint32{multi: 7, passive: 50, plain: 50} {
				p := ps[addr]
				if len(p.GetAfiSafis()) != 2 {
					t.Errorf("%s: %d families, want IPv4 and IPv6 unicast", addr, len(p.GetAfiSafis()))
				}
				for _, af := range p.GetAfiSafis() {
					if l := af.GetPrefixLimits(); l.GetMaxPrefixes() != want {
						t.Errorf("%s %v: prefix limit %v, want %d", addr, af.GetConfig().GetFamily(), l, want)
					}
					if got := af.GetMpGracefulRestart().GetConfig().GetEnabled(); got != tc.gr {
						t.Errorf("%s %v: per-family graceful restart %v, want %v", addr, af.GetConfig().GetFamily(), got, tc.gr)
					}
				}
				gr := p.GetGracefulRestart()
				if gr.GetEnabled() != tc.gr || gr.GetLocalRestarting() != (tc.gr && tc.restarting) || (tc.gr && gr.GetRestartTime() != gracefulRestartTime) {
					t.Errorf("%s: graceful restart %v, want enabled=%v restarting=%v", addr, gr, tc.gr, tc.gr && tc.restarting)
				}
			}
			if err := n.stop(); err != nil {
				t.Fatal(err)
			}
			checkNoLeaks(t, before)
		})
	}
}
