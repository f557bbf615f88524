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

// batchConn is a PacketConn that also reads and writes many datagrams per
// system call (recvmmsg and sendmmsg on Linux). The Prober and the
// Reflector use it when their socket has it, found by a type assertion, and
// ReadFrom and WriteTo otherwise. One goroutine at a time may call
// ReadBatches, and one WriteBatch.
type batchConn interface {
	PacketConn
	// ReadBatches reads datagrams into ms, as many at a time as are queued
	// (up to len(ms)), and calls f with each batch, until the socket is
	// closed or fails; it returns why. A datagram longer than its message's
	// Buf is truncated. f may call WriteBatch.
	ReadBatches(ms []message, f func([]message)) error
	// WriteBatch sends ms in order and returns how many were sent; when
	// that is fewer than len(ms) and err is not nil, err is about ms[n].
	WriteBatch(ms []message) (int, error)
}

// message is one datagram of a batch.
type message struct {
	// Buf is the datagram to write, or the buffer to read into.
	Buf []byte
	// N is the length of the datagram read into Buf.
	N int
	// Addr is where to send it, or where it came from.
	Addr netip.AddrPort
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
	return wrapUDP(c), c.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}
