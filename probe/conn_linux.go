//go:build linux

package probe

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgConn is a UDP socket with batches: recvmmsg(2) and sendmmsg(2) on
// the socket's RawConn, so that Go's netpoller still does the waiting. Its
// message headers are allocated once and reused, so a batch allocates
// nothing.
type mmsgConn struct {
	udpConn
	rc   syscall.RawConn
	v6   bool     // an AF_INET6 socket
	r, w mmsgHdrs // ReadBatches' and WriteBatch's

	// recv and send are c.recvmmsg and c.sendmmsg, made once: a method
	// value made per call would be allocated per call.
	recv, send func(fd uintptr) bool
	read       []message       // ReadBatches' messages
	handle     func([]message) // and function
}

// mmsgHdrs are the headers, I/O vectors and addresses of one batch, and
// the outcome of the system call on them.
type mmsgHdrs struct {
	hs    []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for either family

	todo, done int // WriteBatch's headers to pass, messages sent
	errno      syscall.Errno
}

func (h *mmsgHdrs) grow(n int) {
	if len(h.hs) < n {
		h.hs = make([]unix.Mmsghdr, n)
		h.iovs = make([]unix.Iovec, n)
		h.names = make([]unix.RawSockaddrInet6, n)
	}
}

// set points header i at buf and its address buffer of length namelen.
func (h *mmsgHdrs) set(i int, buf []byte, namelen uint32) {
	h.iovs[i] = unix.Iovec{Base: unsafe.SliceData(buf)}
	h.iovs[i].SetLen(len(buf))
	h.hs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&h.names[i])),
		Namelen: namelen,
		Iov:     &h.iovs[i],
	}}
	h.hs[i].Hdr.SetIovlen(1)
}

// wrapUDP adapts c to a batchConn, or to a plain PacketConn when its file
// descriptor cannot be had.
func wrapUDP(c *net.UDPConn) PacketConn {
	rc, err := c.SyscallConn()
	if err != nil {
		return udpConn{c}
	}
	var sa unix.Sockaddr
	var nameErr error
	if err := rc.Control(func(fd uintptr) { sa, nameErr = unix.Getsockname(int(fd)) }); err != nil || nameErr != nil {
		return udpConn{c}
	}
	_, v6 := sa.(*unix.SockaddrInet6)
	mc := &mmsgConn{udpConn: udpConn{c}, rc: rc, v6: v6}
	mc.recv, mc.send = mc.recvmmsg, mc.sendmmsg
	return mc
}

func (c *mmsgConn) ReadBatches(ms []message, f func([]message)) error {
	if len(ms) == 0 {
		return nil
	}
	c.read, c.handle = ms, f
	defer func() { c.read, c.handle = nil, nil }()
	h := &c.r
	h.grow(len(ms))
	h.errno = 0
	if err := c.rc.Read(c.recv); err != nil {
		return err
	}
	return os.NewSyscallError("recvmmsg", h.errno) // the only other way out
}

// recvmmsg is ReadBatches' loop, run by the RawConn until it returns true
// (an error); it returns false to wait until the socket is readable.
//
// A read of fewer datagrams than asked for emptied the socket's queue, so
// it waits without reading again: RawConn.Read does not clear the
// socket's readiness between two calls of this function (it does between
// two Reads), and every datagram queued after the read makes it ready.
// That saves the read that would only fail with EAGAIN after each batch.
func (c *mmsgConn) recvmmsg(fd uintptr) bool {
	h, ms := &c.r, c.read
	for {
		for i := range ms {
			h.set(i, ms[i].Buf, unix.SizeofSockaddrInet6)
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&h.hs[0])), uintptr(len(ms)), 0, 0, 0)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			h.errno = e // not 0: ReadBatches returns an error
			return true
		}
		n := int(r)
		for i := range n {
			ms[i].N = int(h.hs[i].Len)
			ms[i].Addr = addrPortOf(&h.names[i])
		}
		c.handle(ms[:n])
		if n < len(ms) {
			return false
		}
	}
}

func (c *mmsgConn) WriteBatch(ms []message) (int, error) {
	h := &c.w
	h.grow(len(ms))
	k := 0 // messages with a good address: the ones to send now
	var bad error
	for i := range ms {
		namelen, err := c.putSockaddr(&h.names[i], ms[i].Addr)
		if err != nil {
			bad = err
			break
		}
		h.set(i, ms[i].Buf, namelen)
		k++
	}
	if k == 0 {
		return 0, bad
	}
	h.todo, h.done, h.errno = k, 0, 0
	if err := c.rc.Write(c.send); err != nil {
		return h.done, err
	}
	if h.errno != 0 {
		return h.done, os.NewSyscallError("sendmmsg", h.errno)
	}
	return h.done, bad // h.done == k: bad is about ms[k], if any
}

// sendmmsg is WriteBatch's system call, run by the RawConn: it sends until
// all are sent or one fails; it returns false to wait until the socket is
// writable.
func (c *mmsgConn) sendmmsg(fd uintptr) bool {
	h := &c.w
	for h.done < h.todo {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&h.hs[h.done])), uintptr(h.todo-h.done), 0, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return false
		case e != 0:
			h.errno = e
			return true
		case r == 0:
			return true // cannot happen; do not spin
		}
		h.done += int(r)
	}
	return true
}

// putSockaddr writes a as the socket's family of address into sa and
// returns its length.
func (c *mmsgConn) putSockaddr(sa *unix.RawSockaddrInet6, a netip.AddrPort) (uint32, error) {
	ip := a.Addr()
	if !c.v6 {
		ip = ip.Unmap()
		if !ip.Is4() {
			return 0, fmt.Errorf("probe: write to %s: not an IPv4 address", a)
		}
		*(*unix.RawSockaddrInet4)(unsafe.Pointer(sa)) = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: swapPort(a.Port()), Addr: ip.As4()}
		return unix.SizeofSockaddrInet4, nil
	}
	if !ip.IsValid() {
		return 0, fmt.Errorf("probe: write to %s: not an address", a)
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: swapPort(a.Port()), Addr: ip.As16(), Scope_id: zoneIndex(ip.Zone())}
	return unix.SizeofSockaddrInet6, nil
}

// addrPortOf decodes a source address recvmmsg wrote.
func addrPortOf(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), swapPort(s4.Port))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			ip = ip.WithZone(zoneName(sa.Scope_id))
		}
		return netip.AddrPortFrom(ip, swapPort(sa.Port))
	}
	return netip.AddrPort{}
}

// swapPort converts a port between host and network byte order (either
// way: a swap or nothing).
func swapPort(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

// zoneName and zoneIndex convert an IPv6 zone as package net does: an
// interface's name, or its index in decimal when it has none.
func zoneName(index uint32) string {
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(index), 10)
}

func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	n, _ := strconv.ParseUint(zone, 10, 32)
	return uint32(n)
}
