package tunnel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Root tests: devices in network namespaces named tuntest-<random>, joined
// by a veth created directly inside them; nothing is added to the root
// namespace. Every namespace is deleted when its test ends.

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// run runs a command (bounded to 20 s) and returns its combined output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testNetns is a network namespace of a test.
type testNetns struct {
	name string
	h    netns.NsHandle
}

func newNetns(t *testing.T) testNetns {
	t.Helper()
	name := "tuntest-" + randHex(4)
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if _, err := run("ip", "netns", "del", name); err != nil {
			t.Errorf("delete namespace: %v", err)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return testNetns{name: name, h: h}
}

// in runs fn with this goroutine's thread in the namespace, the way a
// caller opens a Device there, and moves the thread back.
func (n testNetns) in(t *testing.T, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(n.h); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it ends with this goroutine.
			t.Errorf("back to the original namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func (n testNetns) exec(args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", n.name}, args...)...)
}

// open opens a Device in the namespace, closed when the test ends.
func (n testNetns) open(t *testing.T, cfg Config) *Device {
	t.Helper()
	var d *Device
	var err error
	n.in(t, func() { d, err = Open(cfg, testLogger(t)) })
	if err != nil {
		t.Fatalf("Open in %s: %v", n.name, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

// node is one side of a two-namespace lab.
type node struct {
	ns      testNetns
	dev     *Device
	key     wgtypes.Key
	under   netip.Addr // veth address
	overlay netip.Prefix
	port    int
}

func (n *node) endpoint() netip.AddrPort { return netip.AddrPortFrom(n.under, uint16(n.port)) }

// state is n's desired state with peer as its only peer at endpoint ep.
func (n *node) state(peer *node, ep netip.AddrPort) State {
	return State{
		PrivateKey: n.key,
		ListenPort: n.port,
		Addresses:  []netip.Prefix{n.overlay},
		Peers: []Peer{{
			Name: "peer", PublicKey: peer.key.PublicKey(), Endpoint: ep,
			AllowedIPs: []netip.Prefix{peer.overlay},
		}},
	}
}

// newPair builds namespaces a (192.0.2.1) and b (192.0.2.2) on one veth, with
// a userspace Device in each (overlay 100.64.0.1 and .2), not yet applied.
func newPair(t *testing.T) (a, b *node) {
	t.Helper()
	labtest.RequireRoot(t)
	for _, tool := range []string{"ip", "ping", "wg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (make deps installs it): %v", tool, err)
		}
	}
	a = &node{ns: newNetns(t), under: netip.MustParseAddr("192.0.2.1"), overlay: pfx("100.64.0.1/32")}
	b = &node{ns: newNetns(t), under: netip.MustParseAddr("192.0.2.2"), overlay: pfx("100.64.0.2/32")}
	mustRun(t, "ip", "link", "add", "va", "netns", a.ns.name, "type", "veth", "peer", "name", "vb", "netns", b.ns.name)
	for _, n := range []struct {
		node *node
		veth string
	}{{a, "va"}, {b, "vb"}} {
		mustRun(t, "ip", "-n", n.node.ns.name, "addr", "add", n.node.under.String()+"/24", "dev", n.veth)
		mustRun(t, "ip", "-n", n.node.ns.name, "link", "set", n.veth, "up")
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		n.node.key = k
		n.node.port = 20000 + int(randUint16()%40000)
		n.node.dev = n.node.ns.open(t, Config{Name: "rt" + randHex(4), Mode: ModeUserspace})
	}
	return a, b
}

func randUint16() uint16 {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return uint16(b[0])<<8 | uint16(b[1])
}

// applyPair gives each node the other as peer at its real endpoint.
func applyPair(t *testing.T, a, b *node) {
	t.Helper()
	if err := a.dev.Apply(a.state(b, b.endpoint())); err != nil {
		t.Fatalf("Apply a: %v", err)
	}
	if err := b.dev.Apply(b.state(a, a.endpoint())); err != nil {
		t.Fatalf("Apply b: %v", err)
	}
}

// ping pings addr from n once (1 s timeout).
func (n *node) ping(addr netip.Addr) error {
	_, err := n.ns.exec("ping", "-n", "-c", "1", "-W", "1", addr.String())
	return err
}

// waitPing pings until a reply (at most 5 s) and returns how long it took.
func (n *node) waitPing(t *testing.T, addr netip.Addr) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := n.ping(addr)
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("no ping reply from %s in %s: %v", addr, time.Since(start).Round(time.Millisecond), err)
		}
	}
}

var rttRE = regexp.MustCompile(`= ([0-9.]+)/([0-9.]+)/([0-9.]+)/`)

// rtt pings addr count times quickly and returns the average RTT.
func (n *node) rtt(t *testing.T, addr netip.Addr, count int) time.Duration {
	t.Helper()
	out, err := n.ns.exec("ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	m := rttRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no rtt in ping output: %s", out)
	}
	avg, _ := strconv.ParseFloat(m[2], 64)
	return time.Duration(avg * float64(time.Millisecond))
}

func (n *node) peer(t *testing.T) PeerStatus {
	t.Helper()
	ps, err := n.dev.Peers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("peers: %+v, want one", ps)
	}
	return ps[0]
}

// roamRoutes lists the routes with RouteProtocol in n's namespace.
func (n *node) roamRoutes(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, "ip", "-n", n.ns.name, "route", "show", "proto", strconv.Itoa(RouteProtocol)))
}

func TestRootTunnel(t *testing.T) {
	checkGoroutines(t)
	a, b := newPair(t)
	if a.dev.Mode() != ModeUserspace || a.dev.Bind() == nil {
		t.Fatalf("mode %s, bind %v", a.dev.Mode(), a.dev.Bind())
	}
	applyPair(t, a, b)

	// The device, its routes and its UDP socket are in the namespace, not
	// in the root one.
	if _, err := run("ip", "link", "show", a.dev.Name()); err == nil {
		t.Errorf("%s is in the root namespace", a.dev.Name())
	}
	if got := a.roamRoutes(t); got != "100.64.0.2 dev "+a.dev.Name()+" scope link" {
		t.Errorf("roam routes in a: %q", got)
	}
	if a.dev.Bind().Port() != uint16(a.port) {
		t.Errorf("bind port %d, want %d", a.dev.Bind().Port(), a.port)
	}
	if out, err := a.ns.exec("ss", "-Hnul", "sport", "= :"+strconv.Itoa(a.port)); err == nil && !strings.Contains(out, strconv.Itoa(a.port)) {
		t.Errorf("no UDP socket on port %d in the namespace: %q", a.port, out)
	}
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: a.port}); err != nil {
		t.Errorf("port %d is taken in the root namespace (the bind leaked there?): %v", a.port, err)
	} else {
		c.Close()
	}

	// The first packet into the tunnel starts the handshake.
	var probe *net.UDPConn
	a.ns.in(t, func() {
		var err error
		probe, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IP(b.overlay.Addr().AsSlice()), Port: 9})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer probe.Close()
	start := time.Now()
	if _, err := probe.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var hs time.Time
	for hs.IsZero() {
		if time.Since(start) > 5*time.Second {
			t.Fatal("no handshake within 5 s of the first packet")
		}
		time.Sleep(time.Millisecond)
		hs = a.peer(t).LastHandshake
	}
	t.Logf("handshake completed %s after the first packet entered the tunnel", hs.Sub(start).Round(time.Microsecond))
	first := a.waitPing(t, b.overlay.Addr())
	t.Logf("first ping (ip netns exec ping, process start included) answered after %s", first.Round(time.Microsecond))
	t.Logf("ping RTT over the tunnel (20 pings): %s; on the veth underneath: %s",
		a.rtt(t, b.overlay.Addr(), 20), a.rtt(t, b.under, 20))

	// wg(8) reaches the device through its UAPI socket.
	out := mustRun(t, "ip", "netns", "exec", a.ns.name, "wg", "show", a.dev.Name())
	if !strings.Contains(out, "peer: "+b.key.PublicKey().String()) || !strings.Contains(out, "latest handshake") ||
		!strings.Contains(out, "allowed ips: 100.64.0.2/32") {
		t.Errorf("wg show:\n%s", out)
	}

	p := a.peer(t)
	if p.Name != "peer" || p.PublicKey != b.key.PublicKey() || p.Endpoint != b.endpoint() ||
		p.RxBytes == 0 || p.TxBytes == 0 || time.Since(p.LastHandshake) > 10*time.Second {
		t.Errorf("a's peer: %+v", p)
	}

	t.Run("apply again changes nothing", func(t *testing.T) {
		wg := &countingWG{wgAPI: a.dev.wg}
		links := &countingLinks{linkAPI: a.dev.link}
		a.dev.wg, a.dev.link = wg, links
		defer func() { a.dev.wg, a.dev.link = wg.wgAPI, links.linkAPI }()
		before := a.peer(t).LastHandshake
		for range 2 {
			if err := a.dev.Apply(a.state(b, b.endpoint())); err != nil {
				t.Fatal(err)
			}
		}
		if wg.configures != 0 || len(links.changes) != 0 {
			t.Errorf("Apply of the same state: %d WireGuard configurations, link changes %q", wg.configures, links.changes)
		}
		a.waitPing(t, b.overlay.Addr())
		if after := a.peer(t).LastHandshake; !after.Equal(before) {
			t.Errorf("handshake %s -> %s: re-applying caused a new handshake", before, after)
		}
	})

	t.Run("stun on the wireguard port", func(t *testing.T) {
		got := make(chan stunGot, 4)
		a.dev.Bind().SetSTUNHandler(func(pkt []byte, from netip.AddrPort) { got <- stunGot{pkt, from} })
		defer a.dev.Bind().SetSTUNHandler(nil)
		var c *net.UDPConn
		b.ns.in(t, func() {
			var err error
			c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(b.under.AsSlice())})
			if err != nil {
				t.Fatal(err)
			}
		})
		defer c.Close()
		// Tunnel traffic flows meanwhile, and none of it is lost.
		pings := make(chan string, 1)
		go func() {
			out, err := a.ns.exec("ping", "-n", "-q", "-c", "50", "-i", "0.005", "-W", "1", b.overlay.Addr().String())
			if err != nil {
				out += err.Error()
			}
			pings <- out
		}()
		defer func() {
			if out := <-pings; !strings.Contains(out, " 0% packet loss") {
				t.Errorf("pings during the STUN exchange: %s", out)
			}
		}()
		req := stunPacket(0x0001, []byte{0x80, 0x22, 0x00, 0x04, 'r', 'o', 'a', 'm'})
		time.Sleep(50 * time.Millisecond) // let the pings start
		if _, err := c.WriteToUDPAddrPort(req, a.endpoint()); err != nil {
			t.Fatal(err)
		}
		var m stunGot
		select {
		case m = <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("the STUN handler got nothing")
		}
		if string(m.pkt) != string(req) || m.from != c.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Errorf("STUN handler got % x from %s", m.pkt, m.from)
		}
		resp := stunPacket(0x0101, nil)
		if err := a.dev.Bind().SendSTUN(resp, m.from); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != string(resp) || src != a.endpoint() {
			t.Errorf("reply % x from %s, want the response from %s", buf[:n], src, a.endpoint())
		}
		if err := a.ping(b.overlay.Addr()); err != nil {
			t.Errorf("tunnel after STUN: %v", err)
		}
	})

	t.Run("removing the peer removes its route", func(t *testing.T) {
		s := a.state(b, b.endpoint())
		s.Peers = nil
		if err := a.dev.Apply(s); err != nil {
			t.Fatal(err)
		}
		if got := a.roamRoutes(t); got != "" {
			t.Errorf("roam routes left: %q", got)
		}
		if ps, _ := a.dev.Peers(); len(ps) != 0 {
			t.Errorf("peers left: %+v", ps)
		}
		if err := a.ping(b.overlay.Addr()); err == nil {
			t.Error("ping works without the peer")
		}
	})

	t.Run("close removes link, routes and uapi socket", func(t *testing.T) {
		if err := a.dev.Apply(a.state(b, b.endpoint())); err != nil {
			t.Fatal(err)
		}
		if err := a.dev.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := run("ip", "-n", a.ns.name, "link", "show", a.dev.Name()); err == nil {
			t.Error("link still there")
		}
		if got := a.roamRoutes(t); got != "" {
			t.Errorf("routes still there: %q", got)
		}
		if _, err := os.Stat("/var/run/wireguard/" + a.dev.Name() + ".sock"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("uapi socket: %v", err)
		}
	})
}

// TestRootApplyKeepsRoamedEndpoint: a's configured endpoint for b is wrong;
// b calls a, WireGuard roaming fixes a's endpoint, and re-applying a's
// state must not break it again.
func TestRootApplyKeepsRoamedEndpoint(t *testing.T) {
	checkGoroutines(t)
	a, b := newPair(t)
	wrong := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.22"), uint16(b.port))
	if err := a.dev.Apply(a.state(b, wrong)); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.Apply(b.state(a, a.endpoint())); err != nil {
		t.Fatal(err)
	}
	b.waitPing(t, a.overlay.Addr())
	if ep := a.peer(t).Endpoint; ep != b.endpoint() {
		t.Fatalf("a's endpoint for b %s, want the roamed %s", ep, b.endpoint())
	}
	if err := a.dev.Apply(a.state(b, wrong)); err != nil {
		t.Fatal(err)
	}
	if ep := a.peer(t).Endpoint; ep != b.endpoint() {
		t.Errorf("after re-applying, a's endpoint for b is %s, want the roamed %s", ep, b.endpoint())
	}
	if err := a.ping(b.overlay.Addr()); err != nil {
		t.Errorf("ping from a after re-applying: %v", err)
	}
}

// TestRootSourceAddressChange: a's underlay address changes under a live
// tunnel. a's next packet must leave from the new address at once (no
// stale sticky source: wireguard-go's route listener that would clear one
// does not run for a wrapped Bind, see Bind.Send), and b roams to it.
func TestRootSourceAddressChange(t *testing.T) {
	checkGoroutines(t)
	a, b := newPair(t)
	applyPair(t, a, b)
	a.waitPing(t, b.overlay.Addr())
	mustRun(t, "ip", "-n", a.ns.name, "addr", "del", "192.0.2.1/24", "dev", "va")
	mustRun(t, "ip", "-n", a.ns.name, "addr", "add", "192.0.2.11/24", "dev", "va")
	start := time.Now()
	if err := a.ping(b.overlay.Addr()); err != nil {
		t.Fatalf("first ping after the address change: %v", err)
	}
	t.Logf("first ping after a's address change answered in %s", time.Since(start).Round(time.Microsecond))
	if ep := b.peer(t).Endpoint; ep.Addr() != netip.MustParseAddr("192.0.2.11") {
		t.Errorf("b's endpoint for a: %s, want 192.0.2.11", ep)
	}
}

// TestRootModes: kernel mode works or fails cleanly (this kernel has no
// wireguard module), and auto picks what works.
func TestRootModes(t *testing.T) {
	checkGoroutines(t)
	labtest.RequireRoot(t)
	ns := newNetns(t)
	name := "rt" + randHex(4)
	var kernel *Device
	var err error
	ns.in(t, func() { kernel, err = Open(Config{Name: name, Mode: ModeKernel}, testLogger(t)) })
	kernelWorks := err == nil
	if err != nil {
		if !strings.Contains(err.Error(), "tunnel: open "+name+": create kernel wireguard link") {
			t.Errorf("kernel mode error: %v", err)
		}
		if _, err := run("ip", "-n", ns.name, "link", "show", name); err == nil {
			t.Error("a failed kernel Open left a link")
		}
		t.Logf("kernel WireGuard unavailable: %v", err)
	} else {
		if kernel.Mode() != ModeKernel || kernel.Bind() != nil {
			t.Errorf("mode %s bind %v", kernel.Mode(), kernel.Bind())
		}
		if err := kernel.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := run("ip", "-n", ns.name, "link", "show", name); err == nil {
			t.Error("Close left the kernel link")
		}
	}
	auto := ns.open(t, Config{Name: name})
	want := ModeUserspace
	if kernelWorks {
		want = ModeKernel
	}
	if auto.Mode() != want {
		t.Errorf("auto chose %s, want %s", auto.Mode(), want)
	}
	// A second device with the same name in the same namespace is refused.
	ns.in(t, func() { _, err = Open(Config{Name: name, Mode: ModeUserspace}, nil) })
	if err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("second Open of %s: %v", name, err)
	}
	// So is one in another namespace: the UAPI socket path is shared by all
	// namespaces of one mount namespace, and the live socket is not taken
	// over. Nothing is left behind in the other namespace.
	other := newNetns(t)
	other.in(t, func() { _, err = Open(Config{Name: name, Mode: ModeUserspace}, nil) })
	if err == nil || !strings.Contains(err.Error(), "unix socket in use") {
		t.Errorf("Open of %s in a second namespace: %v", name, err)
	}
	if _, err := run("ip", "-n", other.name, "link", "show", name); err == nil {
		t.Errorf("the failed Open left %s in %s", name, other.name)
	}
	if out, err := run("wg", "show", name, "listen-port"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("the first device's UAPI socket is gone: %v %q", err, out)
	}
}

// countingWG counts WireGuard configurations.
type countingWG struct {
	wgAPI
	configures int
}

func (c *countingWG) ConfigureDevice(name string, cfg wgtypes.Config) error {
	c.configures++
	return c.wgAPI.ConfigureDevice(name, cfg)
}

// countingLinks records link changes.
type countingLinks struct {
	linkAPI
	changes []string
}

func (c *countingLinks) note(s string, err error) error {
	c.changes = append(c.changes, s)
	return err
}

func (c *countingLinks) SetMTU(name string, mtu int) error {
	return c.note("mtu", c.linkAPI.SetMTU(name, mtu))
}
func (c *countingLinks) SetUp(name string) error { return c.note("up", c.linkAPI.SetUp(name)) }
func (c *countingLinks) DeleteLink(name string) error {
	return c.note("delete", c.linkAPI.DeleteLink(name))
}
func (c *countingLinks) AddAddr(name string, p netip.Prefix) error {
	return c.note("addr add "+p.String(), c.linkAPI.AddAddr(name, p))
}
func (c *countingLinks) DelAddr(name string, p netip.Prefix) error {
	return c.note("addr del "+p.String(), c.linkAPI.DelAddr(name, p))
}
func (c *countingLinks) AddRoute(name string, p netip.Prefix) error {
	return c.note("route add "+p.String(), c.linkAPI.AddRoute(name, p))
}
func (c *countingLinks) DelRoute(name string, p netip.Prefix) error {
	return c.note("route del "+p.String(), c.linkAPI.DelRoute(name, p))
}
