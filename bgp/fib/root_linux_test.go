package fib

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Root tests: every test makes its own unnamed network namespace (netns.New
// on a thread that is then discarded), builds its links inside it through a
// netlink socket opened there, and closes its last handle on it when it
// ends, pass or fail, which deletes it. Nothing is added to the root
// namespace. Addresses: 198.51.100.0/24 and 2001:db8:1::/64 on ul0,
// 203.0.113.0/24 and 2001:db8:2::/64 on ul1, 10.99.64.0/24 on roam0 (the
// excluded device).

// lab is one test's namespace.
type lab struct {
	ns   netns.NsHandle
	h    *netlink.Handle // in ns
	addr []netip.Addr    // the IPv6 addresses of the links
}

var (
	gw1  = netip.MustParseAddr("198.51.100.2") // via ul0
	gw2  = netip.MustParseAddr("203.0.113.2")  // via ul1
	gw61 = netip.MustParseAddr("2001:db8:1::2")
	gw62 = netip.MustParseAddr("2001:db8:2::2")
)

func newLab(t testing.TB) *lab {
	t.Helper()
	labtest.RequireRoot(t)
	nsc := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, now in the new namespace, ends with
		// this goroutine.
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		nsc <- ns
	}()
	var ns netns.NsHandle
	select {
	case err := <-errc:
		t.Fatalf("new network namespace: %v", err)
	case ns = <-nsc:
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	l := &lab{ns: ns, h: h}
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	l.must(t, h.LinkSetUp(lo))
	l.veth(t, "ul0", "198.51.100.1/24", "2001:db8:1::1/64")
	l.veth(t, "ul1", "203.0.113.1/24", "2001:db8:2::1/64")
	l.veth(t, "roam0", "10.99.64.1/24")
	l.settle(t)
	return l
}

// settle waits (at most 5 s) until the kernel has installed the local
// route of each IPv6 address: it does so from a work queue after the link
// comes up, even without duplicate address detection.
func (l *lab) settle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		routes := l.routes(t)
		missing := slices.IndexFunc(l.addr, func(a netip.Addr) bool {
			return !slices.ContainsFunc(routes, func(line string) bool {
				return strings.HasPrefix(line, a.String()+"/128 ") && strings.Contains(line, " table 255 ")
			})
		})
		if missing < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no local route for %s after 5 s:\n%s", l.addr[missing], strings.Join(routes, "\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

// veth adds a veth pair name/name+"p" in the namespace with addrs on name
// (IPv6 without duplicate address detection) and brings both up.
func (l *lab) veth(t testing.TB, name string, addrs ...string) {
	t.Helper()
	l.must(t, l.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}))
	for _, n := range []string{name, name + "p"} {
		link, err := l.h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if n == name {
			for _, a := range addrs {
				addr, err := netlink.ParseAddr(a)
				if err != nil {
					t.Fatal(err)
				}
				addr.Flags = unix.IFA_F_NODAD
				l.must(t, l.h.AddrAdd(link, addr))
				if a := netip.MustParsePrefix(a).Addr(); a.Is6() {
					l.addr = append(l.addr, a)
				}
			}
		}
		l.must(t, l.h.LinkSetUp(link))
	}
}

func (l *lab) must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (l *lab) linkIndex(t testing.TB, name string) int {
	t.Helper()
	link, err := l.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Index
}

// open runs New in the namespace; the FIB is closed when the test ends.
func (l *lab) open(t testing.TB, cfg Config) *FIB {
	t.Helper()
	var f *FIB
	err := labtest.InNetns(fmt.Sprintf("/proc/self/fd/%d", int(l.ns)), func() error {
		var err error
		f, err = New(cfg, nil)
		return err
	})
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// addRoute adds a route someone else owns: dst via gw (if valid) or on
// dev, with protocol proto, in table.
func (l *lab) addRoute(t testing.TB, table int, dst string, gw string, dev string, proto netlink.RouteProtocol) {
	t.Helper()
	_, ipnet, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	r := &netlink.Route{Dst: ipnet, Table: table, Protocol: proto}
	if gw != "" {
		r.Gw = net.ParseIP(gw)
	}
	if dev != "" {
		r.LinkIndex = l.linkIndex(t, dev)
		if gw == "" {
			r.Scope = netlink.SCOPE_LINK
		}
	}
	l.must(t, l.h.RouteAdd(r))
}

// routes lists every route in every table of the namespace, one line
// each, sorted.
func (l *lab) routes(t testing.TB) []string {
	t.Helper()
	rs, err := l.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if _, ok := names[r.LinkIndex]; !ok && r.LinkIndex > 0 {
			link, err := l.h.LinkByIndex(r.LinkIndex)
			if err != nil {
				t.Fatal(err)
			}
			names[r.LinkIndex] = link.Attrs().Name
		}
		s := r.Dst.String()
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		s += fmt.Sprintf(" dev %s proto %d table %d type %d metric %d", names[r.LinkIndex], int(r.Protocol), r.Table, r.Type, r.Priority)
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// fibTest reports whether a route line is to a prefix the tests give fib:
// 10.99.0.0/20, 2001:db8:90::/44 or 10.99.128.0/17 (the 10 000 routes).
func fibTest(line string) bool {
	dst := netip.MustParsePrefix(strings.Fields(line)[0])
	for _, p := range []string{"10.99.0.0/20", "2001:db8:90::/44", "10.99.128.0/17"} {
		if netip.MustParsePrefix(p).Overlaps(dst) {
			return true
		}
	}
	return false
}

// others is every route but those to the tests' fib prefixes and the IPv6
// link-local and multicast ones, which the kernel adds to each device some
// time after it comes up (after duplicate address detection, for the local
// routes of link-local addresses).
func (l *lab) others(t testing.TB) []string {
	return slices.DeleteFunc(l.routes(t), func(line string) bool {
		dst := netip.MustParsePrefix(strings.Fields(line)[0]).Addr()
		return fibTest(line) || (dst.Is6() && (dst.IsLinkLocalUnicast() || dst.IsMulticast()))
	})
}

// installed is the routes to the tests' fib prefixes in table, as
// "dst via gw dev name proto 114 ...".
func (l *lab) installed(t testing.TB, table int) []string {
	var out []string
	for _, s := range l.routes(t) {
		if fibTest(s) && strings.Contains(s, fmt.Sprintf(" table %d ", table)) {
			out = append(out, s)
		}
	}
	return out
}

func rt(prefix string, gw netip.Addr) Route {
	return Route{Prefix: netip.MustParsePrefix(prefix), Gateway: gw}
}

// TestRootSync walks one FIB through add, change, remove, an unreachable
// gateway, a restart and removal of everything, in the main table and in
// another one, beside routes it must not touch: another protocol's, its own
// protocol's on the excluded device (with and without a gateway), and its
// own protocol's in another table.
func TestRootSync(t *testing.T) {
	for _, table := range []int{0, 1000} {
		t.Run(fmt.Sprintf("table %d", table), func(t *testing.T) {
			l := newLab(t)
			kt := table
			other := unix.RT_TABLE_MAIN
			if table == 0 {
				kt, other = unix.RT_TABLE_MAIN, 2000
			}
			l.addRoute(t, kt, "10.99.100.0/24", "198.51.100.9", "", unix.RTPROT_STATIC)
			l.addRoute(t, kt, "10.99.101.0/24", "10.99.64.2", "roam0", Protocol)
			l.addRoute(t, kt, "10.99.102.0/24", "", "roam0", Protocol)
			l.addRoute(t, kt, "2001:db8:102::/48", "", "roam0", Protocol)
			l.addRoute(t, other, "10.99.103.0/24", "198.51.100.9", "", Protocol)
			l.addRoute(t, kt, "10.99.104.0/24", "203.0.113.9", "", unix.RTPROT_STATIC)
			before := l.others(t)

			f := l.open(t, Config{Table: table, Exclude: []string{"roam0"}})
			if got, err := f.List(); err != nil || len(got) != 0 {
				t.Fatalf("List of a table with only others' routes: %v, %v", got, err)
			}

			sync := func(want []Route, wantRes Result, wantInstalled ...string) {
				t.Helper()
				res, err := f.Sync(want)
				if err != nil {
					t.Fatalf("Sync: %v", err)
				}
				if res != wantRes {
					t.Errorf("Sync: %+v, want %+v", res, wantRes)
				}
				checkInstalled(t, l, kt, wantInstalled)
				if got := l.others(t); !slices.Equal(got, before) {
					t.Fatalf("routes fib does not own changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(got, "\n"))
				}
			}

			want := []Route{
				rt("10.99.0.0/24", gw1),
				rt("10.99.1.0/24", gw2),
				rt("0.0.0.0/1", gw2),
				rt("2001:db8:90::/48", gw61),
				rt("2001:db8:91::/48", gw62),
			}
			// The kernel chose the device from the gateway.
			sync(want, Result{Added: 5},
				"0.0.0.0/1 via 203.0.113.2 dev ul1",
				"10.99.0.0/24 via 198.51.100.2 dev ul0",
				"10.99.1.0/24 via 203.0.113.2 dev ul1",
				"2001:db8:90::/48 via 2001:db8:1::2 dev ul0",
				"2001:db8:91::/48 via 2001:db8:2::2 dev ul1")
			sync(want, Result{},
				"0.0.0.0/1 via 203.0.113.2 dev ul1",
				"10.99.0.0/24 via 198.51.100.2 dev ul0",
				"10.99.1.0/24 via 203.0.113.2 dev ul1",
				"2001:db8:90::/48 via 2001:db8:1::2 dev ul0",
				"2001:db8:91::/48 via 2001:db8:2::2 dev ul1")

			// New gateways (and so devices) for one route of each family,
			// one IPv6 route gone.
			want = []Route{
				rt("10.99.0.0/24", gw2),
				rt("10.99.1.0/24", gw2),
				rt("0.0.0.0/1", gw2),
				rt("2001:db8:90::/48", gw62),
			}
			sync(want, Result{Changed: 2, Removed: 1},
				"0.0.0.0/1 via 203.0.113.2 dev ul1",
				"10.99.0.0/24 via 203.0.113.2 dev ul1",
				"10.99.1.0/24 via 203.0.113.2 dev ul1",
				"2001:db8:90::/48 via 2001:db8:2::2 dev ul1")

			// Unreachable gateways are reported; the rest is installed.
			bad4 := rt("10.99.9.0/24", netip.MustParseAddr("10.99.254.2"))
			bad6 := rt("2001:db8:99::/48", netip.MustParseAddr("2001:db8:3::2"))
			badChange := rt("10.99.1.0/24", netip.MustParseAddr("10.99.254.3"))
			want = []Route{
				rt("10.99.0.0/24", gw2),
				badChange,
				rt("0.0.0.0/1", gw2),
				rt("2001:db8:90::/48", gw62),
				bad4,
				rt("10.99.2.0/24", gw1),
				bad6,
				rt("2001:db8:92::/48", gw61),
			}
			res, err := f.Sync(want)
			if res != (Result{Added: 2, Failed: 3}) {
				t.Errorf("Sync with unreachable gateways: %+v", res)
			}
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("Sync with unreachable gateways: %v, want ErrUnreachable", err)
			}
			var se *SyncError
			if !errors.As(err, &se) || len(se.Errors) != 3 {
				t.Fatalf("Sync with unreachable gateways: %v, want a SyncError of 3 routes", err)
			}
			for _, r := range []Route{badChange, bad4, bad6} {
				if !strings.Contains(err.Error(), r.String()) {
					t.Errorf("error does not name %s: %v", r, err)
				}
			}
			t.Logf("Sync with three unreachable gateways: %v", err)
			// The route whose new gateway failed keeps its old one.
			checkInstalled(t, l, kt, []string{
				"0.0.0.0/1 via 203.0.113.2 dev ul1",
				"10.99.0.0/24 via 203.0.113.2 dev ul1",
				"10.99.1.0/24 via 203.0.113.2 dev ul1",
				"10.99.2.0/24 via 198.51.100.2 dev ul0",
				"2001:db8:90::/48 via 2001:db8:2::2 dev ul1",
				"2001:db8:92::/48 via 2001:db8:1::2 dev ul0",
			})

			// Another owner's prefix is reported, not replaced.
			res, err = f.Sync(append(want, rt("10.99.104.0/24", gw1)))
			if res != (Result{Failed: 4}) || err == nil || !strings.Contains(err.Error(), "add 10.99.104.0/24 via 198.51.100.2: table") {
				t.Errorf("Sync of a prefix with another protocol's route: %+v, %v", res, err)
			}
			if got := l.others(t); !slices.Equal(got, before) {
				t.Fatalf("another protocol's route changed:\n%s", strings.Join(got, "\n"))
			}

			// A restarted roamd finds what the previous one installed
			// and has nothing to change.
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Sync(nil); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Sync after Close: %v", err)
			}
			f = l.open(t, Config{Table: table, Exclude: []string{"roam0"}})
			installed := []Route{
				rt("0.0.0.0/1", gw2),
				rt("10.99.0.0/24", gw2),
				rt("10.99.1.0/24", gw2),
				rt("10.99.2.0/24", gw1),
				rt("2001:db8:90::/48", gw62),
				rt("2001:db8:92::/48", gw61),
			}
			got, err := f.List()
			if err != nil || !slices.Equal(got, installed) {
				t.Errorf("List after restart: %v, %v\nwant %v", got, err, installed)
			}
			sync(installed, Result{},
				"0.0.0.0/1 via 203.0.113.2 dev ul1",
				"10.99.0.0/24 via 203.0.113.2 dev ul1",
				"10.99.1.0/24 via 203.0.113.2 dev ul1",
				"10.99.2.0/24 via 198.51.100.2 dev ul0",
				"2001:db8:90::/48 via 2001:db8:2::2 dev ul1",
				"2001:db8:92::/48 via 2001:db8:1::2 dev ul0")

			sync(nil, Result{Removed: 6})
			if got, err := f.List(); err != nil || len(got) != 0 {
				t.Errorf("List after Sync(nil): %v, %v", got, err)
			}
		})
	}
}

// checkInstalled compares the routes to the tests' fib prefixes in table
// with want ("dst via gw dev name"); each must also have protocol 114.
func checkInstalled(t *testing.T, l *lab, table int, want []string) {
	t.Helper()
	var got []string
	for _, s := range l.installed(t, table) {
		if !strings.Contains(s, fmt.Sprintf(" proto %d ", Protocol)) {
			t.Errorf("route without protocol %d: %s", Protocol, s)
		}
		got = append(got, s[:strings.Index(s, " proto ")])
	}
	if !slices.Equal(got, want) {
		t.Errorf("installed in table %d:\n%s\nwant:\n%s", table, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// routes10k is n /32 routes in 10.99.128.0/17 via gw.
func routesN(n int, gw netip.Addr) []Route {
	out := make([]Route, n)
	base := netip.MustParseAddr("10.99.128.0").As4()
	for i := range out {
		a := base
		a[2] += byte(i >> 8)
		a[3] = byte(i)
		out[i] = Route{Prefix: netip.PrefixFrom(netip.AddrFrom4(a), 32), Gateway: gw}
	}
	return out
}

// TestRootSync10k installs, re-syncs, moves and removes 10 000 routes.
func TestRootSync10k(t *testing.T) {
	l := newLab(t)
	f := l.open(t, Config{Table: 1000})
	for _, step := range []struct {
		name string
		want []Route
		res  Result
		dev  string
	}{
		{"add", routesN(10000, gw1), Result{Added: 10000}, "ul0"},
		{"same again", routesN(10000, gw1), Result{}, "ul0"},
		{"new gateway", routesN(10000, gw2), Result{Changed: 10000}, "ul1"},
		{"remove", nil, Result{Removed: 10000}, ""},
	} {
		res, err := f.Sync(step.want)
		if err != nil || res != step.res {
			t.Fatalf("%s: %+v, %v; want %+v", step.name, res, err, step.res)
		}
		inst := l.installed(t, 1000)
		if len(inst) != len(step.want) {
			t.Fatalf("%s: %d routes in the table, want %d", step.name, len(inst), len(step.want))
		}
		for _, s := range inst {
			if !strings.Contains(s, " dev "+step.dev+" proto 114 ") {
				t.Fatalf("%s: %s", step.name, s)
			}
		}
	}
}

// TestRootLostReplies: with a receive buffer too small for a batch's
// errors, the kernel drops replies. Sync neither hangs nor counts a route
// as installed that it cannot vouch for, and the next Sync sets things
// right.
func TestRootLostReplies(t *testing.T) {
	l := newLab(t)
	f := l.open(t, Config{Table: 1000})
	w := f.k.(*rtnl).w
	if err := unix.SetsockoptInt(w.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 0); err != nil {
		t.Fatal(err)
	}
	// Alternately a route via a reachable and via an unreachable gateway.
	var want, good []Route
	for i, r := range routesN(2000, gw1) {
		if i%2 == 1 {
			r.Gateway = netip.MustParseAddr("10.99.254.2")
		} else {
			good = append(good, r)
		}
		want = append(want, r)
	}
	res, err := f.Sync(want)
	var se *SyncError
	if !errors.As(err, &se) {
		t.Fatalf("Sync: %+v, %v", res, err)
	}
	lost, unreachable := 0, 0
	for _, re := range se.Errors {
		switch {
		case errors.Is(re, errLost):
			lost++
		case errors.Is(re, ErrUnreachable) && re.Route.Gateway != gw1:
			unreachable++
		default:
			t.Fatalf("unexpected error: %v", re)
		}
	}
	t.Logf("small receive buffer: %+v; %d unreachable reported, %d outcomes lost", res, unreachable, lost)
	if lost == 0 || res.Added+res.Failed != 2000 || res.Failed < 1000 {
		t.Errorf("Sync: %+v, %d lost", res, lost)
	}
	if n := len(l.installed(t, 1000)); n != 1000 {
		t.Errorf("%d routes in the table, want the 1000 reachable ones", n)
	}
	if err := unix.SetsockoptInt(w.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20); err != nil {
		t.Fatal(err)
	}
	res, err = f.Sync(want)
	if !errors.As(err, &se) || res != (Result{Failed: 1000}) || !errors.Is(err, ErrUnreachable) || errors.Is(err, errLost) {
		t.Errorf("second Sync: %+v, %v", res, err)
	}
	if got, err := f.List(); err != nil || !slices.Equal(got, good) {
		t.Errorf("List: %d routes, %v", len(got), err)
	}
}

// TestRootUpdate10k installs 10 000 routes with Sync, then churns them with
// Update as roamd does (1 000 removed, 1 000 back, 1 000 moved to another
// gateway, IPv6 too); the kernel holds exactly what was wanted, and a Sync
// afterwards finds nothing to change.
func TestRootUpdate10k(t *testing.T) {
	l := newLab(t)
	f := l.open(t, Config{Table: 1000})
	want := routesN(10000, gw1)
	if _, err := f.Sync(want); err != nil {
		t.Fatal(err)
	}
	prefixes := func(rs []Route) []netip.Prefix {
		out := make([]netip.Prefix, len(rs))
		for i, r := range rs {
			out[i] = r.Prefix
		}
		return out
	}
	moved := slices.Clone(want[2000:3000])
	for i := range moved {
		moved[i].Gateway = gw2
	}
	v6 := rt("2001:db8:90::/48", gw61)
	for _, step := range []struct {
		name     string
		prefixes []netip.Prefix
		want     []Route
		res      Result
		total    int // routes in the table after
	}{
		{"remove 1000", prefixes(want[:1000]), nil, Result{Removed: 1000}, 9000},
		{"add them back", nil, want[:1000], Result{Added: 1000}, 10000},
		{"move 1000", nil, moved, Result{Changed: 1000}, 10000},
		{"add IPv6", nil, []Route{v6}, Result{Added: 1}, 10001},
		{"remove IPv6 and move back", []netip.Prefix{v6.Prefix}, want[2000:3000], Result{Changed: 1000, Removed: 1}, 10000},
	} {
		res, err := f.Update(step.prefixes, step.want)
		if err != nil || res != step.res {
			t.Fatalf("%s: %+v, %v; want %+v", step.name, res, err, step.res)
		}
		if n := len(l.installed(t, 1000)); n != step.total {
			t.Fatalf("%s: %d routes in the table, want %d", step.name, n, step.total)
		}
	}
	// The kernel's echoes told fib the devices: no dump needed next time.
	if rs := f.owned[want[2000].Prefix]; len(rs) != 1 || rs[0].Dev != "ul0" {
		t.Errorf("fib's record of %s: %+v, want one route on ul0", want[2000].Prefix, rs)
	}
	if res, err := f.Sync(want); err != nil || res != (Result{}) {
		t.Errorf("Sync after the updates: %+v, %v; want nothing to change", res, err)
	}
}

// TestRootUpdateExcludedDevice: a route fib adds via a gateway the kernel
// reaches through the excluded device is not fib's afterwards, for Update
// as for Sync: neither removes it.
func TestRootUpdateExcludedDevice(t *testing.T) {
	l := newLab(t)
	f := l.open(t, Config{Table: 1000, Exclude: []string{"roam0"}})
	if _, err := f.Sync(nil); err != nil {
		t.Fatal(err)
	}
	viaTunnel, viaUnderlay := rt("10.99.1.0/24", netip.MustParseAddr("10.99.64.2")), rt("10.99.2.0/24", gw1)
	if res, err := f.Update(nil, []Route{viaTunnel, viaUnderlay}); err != nil || res != (Result{Added: 2}) {
		t.Fatalf("Update: %+v, %v; want 2 added", res, err)
	}
	if res, err := f.Update([]netip.Prefix{viaTunnel.Prefix, viaUnderlay.Prefix}, nil); err != nil || res != (Result{Removed: 1}) {
		t.Errorf("Update removing both: %+v, %v; want the one via ul0 removed", res, err)
	}
	checkInstalled(t, l, 1000, []string{"10.99.1.0/24 via 10.99.64.2 dev roam0"})
	if res, err := f.Sync(nil); err != nil || res != (Result{}) {
		t.Errorf("Sync(nil): %+v, %v; want nothing (the route on roam0 is not fib's)", res, err)
	}
}
