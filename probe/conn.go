package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// PacketConn is the datagram socket a Prober sends from and reads replies
// on: a UDP socket in roamd, an in-memory network in tests. Close makes a
// blocked ReadFrom return an error.
type PacketConn interface {
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	WriteTo(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

// udpConn adapts *net.UDPConn to PacketConn.
type udpConn struct{ c *net.UDPConn }

func (u udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	return u.c.ReadFromUDPAddrPort(b)
}

func (u udpConn) WriteTo(b []byte, addr netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(b, addr)
}

func (u udpConn) Close() error { return u.c.Close() }

// listenUDP opens a UDP socket on local (port 0: any port).
func listenUDP(ctx context.Context, local netip.AddrPort) (PacketConn, netip.AddrPort, error) {
	network := "udp4"
	if local.Addr().Is6() {
		network = "udp6"
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, local.String())
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("probe: listen on %s: %w", local, err)
	}
	c := pc.(*net.UDPConn)
	return udpConn{c}, c.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}
