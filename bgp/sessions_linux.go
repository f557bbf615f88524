package bgp

import (
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// closeSessions shuts down, without a NOTIFICATION, this process's TCP
// sockets whose local and remote endpoints are those of one of ss. GoBGP
// does not hand out its connections, so they are found among the process's
// file descriptors (/proc/self/fd). Each candidate is duplicated before it
// is inspected, so a descriptor closed and reused meanwhile is never shut
// down by mistake; shutdown acts on the socket shared by both descriptors.
// The peer reads end-of-file, which RFC 4724 treats as a restart: it keeps
// our routes as stale. It returns how many sockets were shut down.
func closeSessions(ss []session) (int, error) {
	if len(ss) == 0 {
		return 0, nil
	}
	want := make(map[session]bool, len(ss))
	for _, s := range ss {
		want[s] = true
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if want[socketSession(dup)] && unix.Shutdown(dup, unix.SHUT_RDWR) == nil {
			n++
		}
		unix.Close(dup)
	}
	return n, nil
}

// socketSession returns the endpoints of a connected TCP socket, or the zero
// session.
func socketSession(fd int) session {
	if t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_STREAM {
		return session{}
	}
	la, err := unix.Getsockname(fd)
	if err != nil {
		return session{}
	}
	ra, err := unix.Getpeername(fd)
	if err != nil {
		return session{}
	}
	return session{local: sockaddrAddrPort(la), remote: sockaddrAddrPort(ra)}
}

func sockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}
