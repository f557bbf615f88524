package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// setMD5Sig is the setsockopt the probes use; tests replace it to simulate
// a kernel without TCP-MD5.
var setMD5Sig = unix.SetsockoptTCPMD5Sig

// probeTCPMD5 checks that TCP-MD5 keys for addr can be set where GoBGP
// sets them: on an outgoing socket and, when listening, on a listener made
// as GoBGP makes its own. GoBGP only logs a warning when the listener
// refuses the key, and the neighbour's signed SYNs are then dropped, so the
// session silently never comes up.
//
// The listener check matters beyond old kernels: since Go 1.24 listeners
// use MPTCP by default (GODEBUG multipathtcp=2), and the kernel refuses
// TCP-MD5 on MPTCP sockets (ENOPROTOOPT). A program that needs TCP-MD5 must
// be built with //go:debug multipathtcp=0.
func probeTCPMD5(addr netip.Addr, key string, listener bool) error {
	family := unix.AF_INET6
	if addr.Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("TCP-MD5 (RFC 2385) is not available: %w", os.NewSyscallError("socket", err))
	}
	err = setMD5(fd, addr, key)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("TCP-MD5 (RFC 2385) is not available on this system: %w", err)
	}
	if !listener {
		return nil
	}
	network, local := "tcp4", "127.0.0.1:0"
	if !addr.Is4() {
		network, local = "tcp6", "[::1]:0"
	}
	var lc net.ListenConfig // as GoBGP's newTCPListener
	l, err := lc.Listen(context.Background(), network, local)
	if err != nil {
		return nil // no loopback to try on; GoBGP will warn if it fails
	}
	defer l.Close()
	sc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		return nil
	}
	if cerr := sc.Control(func(s uintptr) { err = setMD5(int(s), addr, key) }); cerr != nil {
		return nil
	}
	if err != nil {
		hint := ""
		if lc.MultipathTCP() {
			hint = " (Go makes listeners MPTCP by default since 1.24 and MPTCP refuses TCP-MD5: build with //go:debug multipathtcp=0)"
		}
		return fmt.Errorf("TCP-MD5 (RFC 2385) is not available on the BGP listener: %w%s", err, hint)
	}
	return nil
}

func setMD5(fd int, addr netip.Addr, key string) error {
	sig := &unix.TCPMD5Sig{Keylen: uint16(len(key))}
	copy(sig.Key[:], key)
	if addr.Is4() {
		sig.Addr.Family = unix.AF_INET
		a := addr.As4()
		copy(sig.Addr.Data[2:6], a[:]) // sockaddr_in: port (2 bytes), address
	} else {
		sig.Addr.Family = unix.AF_INET6
		a := addr.As16()
		copy(sig.Addr.Data[6:22], a[:]) // sockaddr_in6: port, flowinfo, address
	}
	return os.NewSyscallError("setsockopt TCP_MD5SIG", setMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, sig))
}
