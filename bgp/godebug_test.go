//go:debug multipathtcp=0

// The test binary is built as roamd must be: Go's listeners are MPTCP by
// default since Go 1.24, and the kernel refuses TCP-MD5 on MPTCP sockets
// (see probeTCPMD5). TestTCPMD5MPTCPListener turns the default back on.
package bgp
