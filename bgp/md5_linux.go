package bgp

import (
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// setMD5Sig is the setsockopt the probe uses; tests replace it to simulate
// a kernel without TCP-MD5.
var setMD5Sig = unix.SetsockoptTCPMD5Sig

// probeTCPMD5 checks that the kernel accepts a TCP-MD5 key for addr on a
// fresh socket of addr's family. GoBGP only logs a warning when it cannot
// set the key on its listener, and an outgoing session then never gets past
// connect, so an unsupported kernel would otherwise go unnoticed.
func probeTCPMD5(addr netip.Addr, key string) error {
	family := unix.AF_INET6
	if addr.Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
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
