//go:build !linux

package probe

import "net"

// wrapUDP adapts c to PacketConn; only Linux has batches.
func wrapUDP(c *net.UDPConn) PacketConn { return udpConn{c} }
