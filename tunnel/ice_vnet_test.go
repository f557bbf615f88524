package tunnel

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v2/vnet"
)

// The ICE tests run over pion's virtual network: two nodes, each in its
// own LAN behind a NAT router, and a hub on the "internet" that answers
// STUN with stunAnswer, as a roam hub does on its WireGuard port.
const (
	vnetHub     = "1.2.3.4"
	vnetHubPort = 51820
	vnetPublicA = "27.1.1.1"
	vnetLocalA  = "192.168.0.1"
	vnetPublicB = "28.1.1.1"
	vnetLocalB  = "10.2.0.1"
)

var (
	natEndpointIndependent = &vnet.NATType{
		Mode:              vnet.NATModeNormal,
		MappingBehavior:   vnet.EndpointIndependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}
	natSymmetric = &vnet.NATType{
		Mode:              vnet.NATModeNormal,
		MappingBehavior:   vnet.EndpointAddrPortDependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}
)

type vnetLab struct {
	wan    *vnet.Router
	lanA   *vnet.Router
	lanB   *vnet.Router
	a, b   *vnet.Net
	hub    net.PacketConn
	served chan netip.AddrPort // the mapped addresses the hub's STUN saw
}

// newVNetLab builds the network; everything stops at the end of the test.
func newVNetLab(t *testing.T, natA, natB *vnet.NATType) *vnetLab {
	t.Helper()
	logs := logging.NewDefaultLoggerFactory()
	logs.DefaultLogLevel = logging.LogLevelError
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "0.0.0.0/0", LoggerFactory: logs})
	if err != nil {
		t.Fatal(err)
	}
	hubNet, err := vnet.NewNet(&vnet.NetConfig{StaticIP: vnetHub})
	if err != nil {
		t.Fatal(err)
	}
	if err := wan.AddNet(hubNet); err != nil {
		t.Fatal(err)
	}
	lab := &vnetLab{wan: wan, served: make(chan netip.AddrPort, 64)}
	lan := func(public, local string, nat *vnet.NATType) (*vnet.Router, *vnet.Net) {
		r, err := vnet.NewRouter(&vnet.RouterConfig{
			StaticIPs: []string{public}, CIDR: local + "/24", NATType: nat, LoggerFactory: logs,
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{local}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddNet(n); err != nil {
			t.Fatal(err)
		}
		if err := wan.AddRouter(r); err != nil {
			t.Fatal(err)
		}
		return r, n
	}
	lab.lanA, lab.a = lan(vnetPublicA, vnetLocalA, natA)
	lab.lanB, lab.b = lan(vnetPublicB, vnetLocalB, natB)
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	lab.hub, err = hubNet.ListenPacket("udp4", net.JoinHostPort(vnetHub, "51820"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := lab.hub.ReadFrom(buf)
			if err != nil {
				return
			}
			ap := from.(*net.UDPAddr).AddrPort()
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			if resp, ok := stunAnswer(buf[:n], ap); ok {
				_, _ = lab.hub.WriteTo(resp, from)
				select {
				case lab.served <- ap:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = lab.hub.Close()
		<-done
		_ = wan.Stop()
	})
	return lab
}

// vnetNode is one end: an ICE over a conn on its WireGuard port.
type vnetNode struct {
	ice  *ICE
	conn net.PacketConn
}

func (lab *vnetLab) node(t *testing.T, n *vnet.Net, local string) *vnetNode {
	t.Helper()
	conn, err := n.ListenPacket("udp4", net.JoinHostPort("0.0.0.0", "51820"))
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr(local)
	x, err := NewICE(ICEConfig{
		Conn:      conn,
		Net:       n,
		HostAddrs: func() []netip.Addr { return []netip.Addr{addr} },
		STUN: func() []netip.AddrPort {
			return []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(vnetHub), vnetHubPort)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return &vnetNode{ice: x, conn: conn}
}

// sessionRecorder collects what a Session reports.
type sessionRecorder struct {
	mu       sync.Mutex
	cands    []string
	gathered chan struct{}
	states   []string
	selected chan Pair
	failed   chan struct{}
	once     sync.Once
	failOnce sync.Once
}

func newRecorder() *sessionRecorder {
	return &sessionRecorder{gathered: make(chan struct{}), selected: make(chan Pair, 4), failed: make(chan struct{})}
}

func (r *sessionRecorder) events() SessionEvents {
	return SessionEvents{
		Candidate: func(c string) {
			if c == "" {
				r.once.Do(func() { close(r.gathered) })
				return
			}
			r.mu.Lock()
			r.cands = append(r.cands, c)
			r.mu.Unlock()
		},
		State: func(s string) {
			r.mu.Lock()
			r.states = append(r.states, s)
			r.mu.Unlock()
			if s == "failed" {
				r.failOnce.Do(func() { close(r.failed) })
			}
		},
		Selected: func(p Pair) { r.selected <- p },
	}
}

func (r *sessionRecorder) candidates(t *testing.T) []string {
	t.Helper()
	select {
	case <-r.gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("gathering did not complete in 10 s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.cands...)
}

// negotiate runs one ICE exchange between the two nodes, passing
// credentials and candidates by hand as the signalling would.
func negotiate(t *testing.T, a, b *vnetNode) (ra, rb *sessionRecorder, sa, sb *Session) {
	t.Helper()
	ra, rb = newRecorder(), newRecorder()
	var err error
	if sa, err = a.ice.NewSession(true, ra.events()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sa.Close)
	if sb, err = b.ice.NewSession(false, rb.events()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	ca, cb := ra.candidates(t), rb.candidates(t)
	if err := sa.AddRemote(cb); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddRemote(ca); err != nil {
		t.Fatal(err)
	}
	ua, pa := sa.Credentials()
	ub, pb := sb.Credentials()
	sa.Start(ub, pb)
	sb.Start(ua, pa)
	return ra, rb, sa, sb
}

func hasCandidate(cands []string, typ, addr string) bool {
	for _, c := range cands {
		if strings.Contains(c, " typ "+typ) && strings.Contains(c, addr) {
			return true
		}
	}
	return false
}

// TestICEEndpointIndependentNATs: both nodes behind endpoint-independent
// NATs learn their public address and WireGuard's port from the hub's
// STUN, and the agents select a direct pair between the two public
// mappings: the endpoint WireGuard is then given.
func TestICEEndpointIndependentNATs(t *testing.T) {
	lab := newVNetLab(t, natEndpointIndependent, natEndpointIndependent)
	a, b := lab.node(t, lab.a, vnetLocalA), lab.node(t, lab.b, vnetLocalB)
	start := time.Now()
	ra, rb, _, _ := negotiate(t, a, b)
	if c := ra.candidates(t); !hasCandidate(c, "host", vnetLocalA+" 51820") || !hasCandidate(c, "srflx", vnetPublicA) {
		t.Errorf("a's candidates %q: want host %s:51820 and srflx %s", c, vnetLocalA, vnetPublicA)
	}
	var pa, pb Pair
	for _, w := range []struct {
		r *sessionRecorder
		p *Pair
	}{{ra, &pa}, {rb, &pb}} {
		select {
		case *w.p = <-w.r.selected:
		case <-time.After(10 * time.Second):
			t.Fatalf("no pair selected in 10 s; states a %v b %v", ra.states, rb.states)
		}
	}
	t.Logf("selected after %v: a %s; b %s", time.Since(start).Round(time.Millisecond), pa, pb)
	if pa.Remote.Addr().String() != vnetPublicB || pb.Remote.Addr().String() != vnetPublicA {
		t.Errorf("selected remotes a->%s b->%s: want the public mappings %s and %s", pa.Remote, pb.Remote, vnetPublicB, vnetPublicA)
	}
	// The remote of each pair is the other's mapping of WireGuard's port,
	// as the hub's STUN server saw it.
	seen := map[netip.AddrPort]bool{}
	for len(lab.served) > 0 {
		seen[<-lab.served] = true
	}
	if !seen[pa.Remote] || !seen[pb.Remote] {
		t.Errorf("selected remotes %s and %s: not mappings the hub's STUN answered (%v)", pa.Remote, pb.Remote, seen)
	}
	if !hasCandidate(rb.candidates(t), "srflx", pa.Remote.Addr().String()+" "+strconv.Itoa(int(pa.Remote.Port()))) {
		t.Errorf("a's remote %s is not among b's server-reflexive candidates %q", pa.Remote, rb.candidates(t))
	}
}

// TestICESymmetricNATsFail: behind symmetric NATs on both sides no pair
// works; the agents report failed, nothing is selected, and the node is
// left with the hub path.
func TestICESymmetricNATsFail(t *testing.T) {
	lab := newVNetLab(t, natSymmetric, natSymmetric)
	a, b := lab.node(t, lab.a, vnetLocalA), lab.node(t, lab.b, vnetLocalB)
	ra, rb, _, _ := negotiate(t, a, b)
	for name, r := range map[string]*sessionRecorder{"a": ra, "b": rb} {
		select {
		case <-r.failed:
		case p := <-r.selected:
			t.Fatalf("%s selected %s behind symmetric NATs", name, p)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no failure in 30 s; states %v", name, r.states)
		}
	}
	select {
	case p := <-ra.selected:
		t.Errorf("a selected %s", p)
	case p := <-rb.selected:
		t.Errorf("b selected %s", p)
	default:
	}
}
