package bgp

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// TestTCPMD5 runs real TCP-MD5 sessions on loopback: the neighbour with the
// right password comes up, the one with a wrong password never does.
func TestTCPMD5(t *testing.T) {
	before := goleak.IgnoreCurrent()
	if err := probeTCPMD5(addrB, "s3cret", true); err != nil {
		t.Fatalf("TCP-MD5 refused: %v", err)
	}
	wrong := netip.MustParseAddr("127.0.0.3")
	portH := freePort(t)
	h := newNode(t, "H", Config{
		ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: portH, ListenAddresses: []netip.Addr{addrA},
		DisableGracefulRestart: true,
		Neighbors: []Neighbor{
			{Address: addrB, ASN: asnB, Passive: true, Password: "s3cret"},
			{Address: wrong, ASN: asnC, Passive: true, Password: "other"},
		},
	})
	dialer := func(name string, asn uint32, self netip.Addr, pw string) *node {
		return newNode(t, name, Config{
			ASN: asn, RouterID: netip.MustParseAddr("10.0.0.2"), ListenPort: -1, DisableGracefulRestart: true,
			Neighbors: []Neighbor{{Address: addrA, Port: portH, ASN: asnA, LocalAddress: self, Password: pw}},
		})
	}
	good, bad := dialer("B", asnB, addrB, "s3cret"), dialer("W", asnC, wrong, "wrong")
	startNodes(t, h, good, bad)
	h.waitState(t, addrB, true)
	time.Sleep(3 * time.Second) // W retries every second or two
	if st := h.neighbor(t, wrong); st.State != "active" {
		t.Errorf("neighbour with the wrong password is %q, want active (never connected)", st.State)
	}
	for _, n := range []*node{bad, good, h} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: %v", n.name, err)
		}
	}
	checkNoLeaks(t, before)
}

// TestTCPMD5MPTCPListener: with Go's default MPTCP listeners, Run fails
// naming the neighbour and the fix when the kernel does MPTCP (the listener
// would refuse the key and the neighbour's signed SYNs would be dropped),
// and works when it does not.
func TestTCPMD5MPTCPListener(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Setenv("GODEBUG", "multipathtcp=2") // Go 1.24's default
	enabled, _ := os.ReadFile("/proc/sys/net/mptcp/enabled")
	mptcp := strings.TrimSpace(string(enabled)) == "1"
	n := newNode(t, "X", Config{
		ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: freePort(t), ListenAddresses: []netip.Addr{addrA},
		Neighbors: []Neighbor{{Address: addrB, ASN: asnB, Password: "s3cret", Passive: true}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.s.Run(ctx) }()
	if mptcp {
		err := <-errc
		for _, want := range []string{"bgp: neighbor 127.0.0.2 has a password, but TCP-MD5 (RFC 2385) is not available on the BGP listener",
			"protocol not available", "//go:debug multipathtcp=0"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Run with an MPTCP listener = %v, want an error containing %q", err, want)
			}
		}
	} else {
		started(t, n.s, 1)
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run without MPTCP in the kernel = %v", err)
		}
	}
	cancel()
	checkNoLeaks(t, before)
}

// TestTCPMD5Unavailable: on a kernel without TCP-MD5, Run fails naming the
// neighbour instead of leaving a session that never comes up.
func TestTCPMD5Unavailable(t *testing.T) {
	before := goleak.IgnoreCurrent()
	orig := setMD5Sig
	setMD5Sig = func(int, int, int, *unix.TCPMD5Sig) error { return unix.ENOPROTOOPT }
	defer func() { setMD5Sig = orig }()
	n := newNode(t, "X", Config{
		ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
		Neighbors: []Neighbor{{Address: addrA, ASN: asnB}, {Address: addrB, ASN: asnB, Password: "s3cret"}},
	})
	err := n.s.Run(context.Background())
	for _, want := range []string{"bgp: neighbor 127.0.0.2 has a password, but TCP-MD5 (RFC 2385) is not available on this system",
		"setsockopt TCP_MD5SIG: protocol not available"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run = %v, want an error containing %q", err, want)
		}
	}
	checkNoLeaks(t, before)
}
