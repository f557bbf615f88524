package bgp

import (
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// gracefulRestartTime is the restart time we advertise (seconds).
const gracefulRestartTime = 120

func seconds(d time.Duration) uint64 { return uint64(d / time.Second) }

var families = []*api.Family{
	{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
	{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
}

// global is the StartBgp request's global configuration.
func (s *Speaker) global() *api.Global {
	g := &api.Global{
		Asn:        s.cfg.ASN,
		RouterId:   s.cfg.RouterID.String(),
		ListenPort: int32(s.cfg.ListenPort),
	}
	for _, a := range s.cfg.ListenAddresses {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	if s.cfg.GracefulRestart() {
		g.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime}
	}
	return g
}

// peer is the AddPeer request for n: short timers, IPv4 and IPv6 unicast,
// the prefix limit and graceful restart, announcing a restart (when
// graceful restart is on) if restarting.
func (s *Speaker) peer(n Neighbor, restarting bool) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.Address.String(),
			PeerAsn:         n.ASN,
			AuthPassword:    n.Password,
			Description:     n.Description,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           seconds(s.cfg.ConnectRetry),
			HoldTime:               seconds(s.cfg.HoldTime),
			KeepaliveInterval:      seconds(s.cfg.KeepaliveInterval),
			IdleHoldTimeAfterReset: seconds(s.cfg.IdleHoldTime),
		}},
		Transport: &api.Transport{PassiveMode: n.Passive, RemotePort: uint32(n.Port)},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	gr := s.cfg.GracefulRestart()
	if gr {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime,
			LocalRestarting: restarting}
	}
	for _, f := range families {
		af := &api.AfiSafi{
			Config: &api.AfiSafiConfig{Family: f, Enabled: true},
			// GoBGP counts the neighbour's adj-RIB-in (before import
			// policy) per family; above the limit it sends a Cease
			// (maximum number of prefixes reached) and keeps the session
			// down (admin state PFX_CT) until the neighbour is enabled
			// again.
			PrefixLimits: &api.PrefixLimit{Family: f, MaxPrefixes: n.MaxPrefixes},
		}
		if gr {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, af)
	}
	return p
}
