package main

import (
	"log/slog"
	"net"
	"net/netip"

	"github.com/roamnet/roam/tunnel"
)

// greet sends one datagram through the tunnel to each peer that has an
// endpoint, so that WireGuard handshakes now. Without it, a peer that kept a
// session from before our restart would notice only after 15 s without
// answers (WireGuard's keepalive + rekey timeouts), and we, with nothing to
// send, would not call it either. The datagram goes to the discard port of
// the peer's overlay address.
func greet(peers []tunnel.Peer, log *slog.Logger) {
	for _, p := range peers {
		if !p.Endpoint.IsValid() || len(p.AllowedIPs) == 0 {
			continue
		}
		dst := netip.AddrPortFrom(p.AllowedIPs[0].Addr(), 9)
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
		if err == nil {
			_, err = c.Write([]byte("roam"))
			c.Close()
		}
		if err != nil {
			log.Debug("greet peer", "peer", p.Name, "to", dst, "err", err)
		}
	}
}
