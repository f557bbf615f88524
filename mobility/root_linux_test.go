//go:build linux

package mobility

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Root tests: a Watcher on real netlink in a private network namespace
// (the node), whose veths eth1, eth2 and eth3 have their peers in a second
// one (the network). Both namespaces are unnamed, created by the test and
// gone when it closes them; nothing touches the root namespace.

// rootLab is a node with Wi-Fi (eth1, 192.0.2.2/26, default route via
// 192.0.2.1 metric 0), LTE (eth2, 192.0.2.66/26, default route via
// 192.0.2.65 metric 100) and an unused eth3, all up, with
// ignore_routes_with_linkdown=1 and promote_secondaries=1, as on a phone.
type rootLab struct {
	node, network netns.NsHandle
	nodeNL, netNL *netlink.Handle
	w             *Watcher
	cancel        context.CancelFunc
	ran           chan error
}

var rootTarget = netip.MustParseAddr("203.0.113.1")

func newRootLab(t *testing.T) *rootLab {
	t.Helper()
	labtest.RequireRoot(t)
	checkGoroutines(t)
	l := &rootLab{node: newTestNetns(t), network: newTestNetns(t)}
	l.nodeNL = netlinkIn(t, l.node)
	l.netNL = netlinkIn(t, l.network)

	for i, a := range []string{"192.0.2.2/26", "192.0.2.66/26", ""} {
		l.addVeth(t, fmt.Sprintf("eth%d", i+1), fmt.Sprintf("peer%d", i+1), a)
	}
	for i, gw := range []string{"192.0.2.1", "192.0.2.65"} {
		link := l.link(t, fmt.Sprintf("eth%d", i+1))
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(gw), Priority: 100 * i}
		if err := l.nodeNL.RouteAdd(r); err != nil {
			t.Fatalf("route add %s: %v", r, err)
		}
	}
	inTestNetns(t, l.node, func() {
		// /proc/sys/net shows the namespace of the thread that opens it:
		// eth1 is there only if this thread is in the node's namespace.
		if _, err := os.Stat("/proc/sys/net/ipv4/conf/eth1"); err != nil {
			t.Fatalf("/proc/sys/net is not the node's: %v", err)
		}
		// No IPv6: its duplicate address detection announces addresses
		// about a second after every carrier change, and such a message
		// would begin the next cut's burst before the cut.
		for _, k := range []string{
			"ipv4/conf/all/ignore_routes_with_linkdown", "ipv4/conf/all/promote_secondaries",
			"ipv6/conf/all/disable_ipv6", "ipv6/conf/default/disable_ipv6",
		} {
			if err := os.WriteFile(filepath.Join("/proc/sys/net", k), []byte("1"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	l.settle(t)

	var err error
	inTestNetns(t, l.node, func() {
		l.w, err = NewWatcher(Config{
			Ignore:  func(iface string) bool { return iface == "lo" || iface == "roam0" },
			Targets: []netip.Addr{rootTarget},
			Log:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
		})
	})
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	var ctx context.Context
	ctx, l.cancel = context.WithCancel(context.Background())
	l.ran = make(chan error, 1)
	go func() { l.ran <- l.w.Run(ctx) }()
	t.Cleanup(func() {
		l.cancel()
		select {
		case err := <-l.ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of the cancel")
		}
	})
	for deadline := time.Now().Add(5 * time.Second); len(l.w.Snapshot().Links) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no first snapshot within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	return l
}

// newTestNetns returns a new network namespace, closed when the test ends;
// the calling thread stays where it was.
func newTestNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	inTestNetns(t, netns.None(), func() {
		var err error
		if ns, err = netns.New(); err != nil {
			t.Fatalf("new network namespace: %v", err)
		}
	})
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inTestNetns runs fn with this goroutine's thread in ns (if open) and
// moves the thread back to its own namespace after.
func inTestNetns(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if ns.IsOpen() {
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			t.Fatal(err)
		}
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

func netlinkIn(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func (l *rootLab) link(t *testing.T, name string) netlink.Link {
	t.Helper()
	link, err := l.nodeNL.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return link
}

// addVeth adds name in the node, with address prefix if not empty, and its
// peer in the network; both up.
func (l *rootLab) addVeth(t *testing.T, name, peer, prefix string) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer, PeerNamespace: netlink.NsFd(l.network)}
	if err := l.nodeNL.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	if prefix != "" {
		l.addAddr(t, name, prefix)
	}
	if err := l.nodeNL.LinkSetUp(l.link(t, name)); err != nil {
		t.Fatal(err)
	}
	l.setPeer(t, peer, true)
}

func (l *rootLab) addAddr(t *testing.T, name, prefix string) {
	t.Helper()
	a, err := netlink.ParseAddr(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.nodeNL.AddrAdd(l.link(t, name), a); err != nil {
		t.Fatalf("addr add %s dev %s: %v", prefix, name, err)
	}
}

func (l *rootLab) delAddr(t *testing.T, name, prefix string) {
	t.Helper()
	a, err := netlink.ParseAddr(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.nodeNL.AddrDel(l.link(t, name), a); err != nil {
		t.Fatalf("addr del %s dev %s: %v", prefix, name, err)
	}
}

// setPeer sets a veth's far end up or down: the near end gains or loses
// carrier.
func (l *rootLab) setPeer(t *testing.T, peer string, up bool) {
	t.Helper()
	link, err := l.netNL.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	set := l.netNL.LinkSetDown
	if up {
		set = l.netNL.LinkSetUp
	}
	if err := set(link); err != nil {
		t.Fatalf("set %s up=%v: %v", peer, up, err)
	}
}

// settle waits until every eth has carrier and the target goes via eth1,
// so that the Watcher starts from a quiet node.
func (l *rootLab) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := (&rtnl{h: l.nodeNL}).Read([]netip.Addr{rootTarget})
		if err != nil {
			t.Fatal(err)
		}
		s = normalize(s, func(string) bool { return false })
		usable := 0
		for _, link := range s.Links {
			if link.usable() {
				usable++
			}
		}
		if usable == 3 && s.Paths[0].Iface == "eth1" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not settle: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// event waits up to 2 s for the next Event and returns it with the time
// it was received.
func (l *rootLab) event(t *testing.T) (Event, time.Time) {
	t.Helper()
	select {
	case ev := <-l.w.Events():
		return ev, time.Now()
	case <-time.After(2 * time.Second):
		t.Fatal("no event within 2 s")
		return Event{}, time.Time{}
	}
}

func (l *rootLab) noEvent(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-l.w.Events():
		t.Fatalf("unexpected event: %s", ev.Change)
	case <-time.After(d):
	}
}

func rootPath(iface, src, gw string) Path {
	return Path{Target: rootTarget, Iface: iface, Src: netip.MustParseAddr(src), Gateway: netip.MustParseAddr(gw), Reachable: true}
}

var (
	pathWiFi  = rootPath("eth1", "192.0.2.2", "192.0.2.1")
	pathLTE   = rootPath("eth2", "192.0.2.66", "192.0.2.65")
	pathWiFi3 = rootPath("eth1", "192.0.2.3", "192.0.2.1")
)

func TestRootWatcher(t *testing.T) {
	t.Run("first snapshot", func(t *testing.T) {
		l := newRootLab(t)
		s := l.w.Snapshot()
		var names []string
		for _, link := range s.Links {
			names = append(names, link.Name)
			if !link.usable() {
				t.Errorf("link %+v not usable", link)
			}
		}
		if !slices.Equal(names, []string{"eth1", "eth2", "eth3"}) {
			t.Errorf("links %v, want eth1 eth2 eth3 (lo ignored, the peers elsewhere)", names)
		}
		want := []Addr{addrOn("eth1", "192.0.2.2/26"), addrOn("eth2", "192.0.2.66/26")}
		if !reflect.DeepEqual(s.Addrs, want) {
			t.Errorf("addrs %v, want %v (no link-local, no loopback)", s.Addrs, want)
		}
		if !reflect.DeepEqual(s.Paths, []Path{pathWiFi}) {
			t.Errorf("paths %v, want %v", s.Paths, pathWiFi)
		}
	})

	// The Wi-Fi loses carrier: its default route is ignored and the path
	// moves to LTE. The Wi-Fi comes back: the path returns. Three times,
	// a second apart: the kernel reports carrier changes at most once a
	// second (linkwatch), for all namespaces together.
	t.Run("Wi-Fi cut", func(t *testing.T) {
		l := newRootLab(t)
		var seen, emitted, total []time.Duration
		for i := range 3 {
			for _, cut := range []bool{true, false} {
				time.Sleep(time.Second)
				at := time.Now()
				l.setPeer(t, "peer1", !cut)
				ev, got := l.event(t)
				c := ev.Change
				want := PathChange{Old: pathWiFi, New: pathLTE}
				links, wantLinks := c.LinksDown, "eth1"
				if !cut {
					want.Old, want.New = want.New, want.Old
					links = c.LinksUp
				}
				if !c.Handover() || !slices.Equal(links, []string{wantLinks}) || !reflect.DeepEqual(c.PathsChanged, []PathChange{want}) {
					t.Fatalf("cut %d (cut=%v): change %s, want eth1 %s and the path %s -> %s", i, cut, c, map[bool]string{true: "down", false: "up"}[cut], want.Old, want.New)
				}
				if ev.Seen.Before(at) || got.Before(ev.Seen) {
					t.Fatalf("Seen %v outside [change %v, received %v]", ev.Seen, at, got)
				}
				seen = append(seen, ev.Seen.Sub(at))
				emitted = append(emitted, got.Sub(ev.Seen))
				total = append(total, got.Sub(at))
			}
		}
		l.noEvent(t, 300*time.Millisecond)
		t.Logf("6 carrier changes (3 cuts, 3 repairs), debounce %v:", DefaultDebounce)
		t.Logf("  change -> first netlink message (Seen): %s", spread(seen))
		t.Logf("  Seen -> Event received:                  %s", spread(emitted))
		t.Logf("  change -> Event received:                %s", spread(total))
	})

	// A DHCP-style renumbering on the same link: 192.0.2.3 added, 192.0.2.2
	// removed (192.0.2.3 promoted); the path keeps eth1 and its gateway but
	// changes its source.
	t.Run("new address on the same link", func(t *testing.T) {
		l := newRootLab(t)
		at := time.Now()
		l.addAddr(t, "eth1", "192.0.2.3/26")
		l.delAddr(t, "eth1", "192.0.2.2/26")
		ev, got := l.event(t)
		want := Change{
			AddrsAdded:   []Addr{addrOn("eth1", "192.0.2.3/26")},
			AddrsRemoved: []Addr{addrOn("eth1", "192.0.2.2/26")},
			PathsChanged: []PathChange{{Old: pathWiFi, New: pathWiFi3}},
		}
		if !reflect.DeepEqual(ev.Change, want) || !ev.Change.Handover() {
			t.Fatalf("change %s, want %s (a handover)", ev.Change, want)
		}
		t.Logf("renumbering: change -> Seen %v, Seen -> received %v", ev.Seen.Sub(at), got.Sub(ev.Seen))
		l.noEvent(t, 300*time.Millisecond)
	})

	t.Run("address on an unused link", func(t *testing.T) {
		l := newRootLab(t)
		l.addAddr(t, "eth3", "198.51.100.2/24")
		ev, _ := l.event(t)
		want := Change{AddrsAdded: []Addr{addrOn("eth3", "198.51.100.2/24")}}
		if !reflect.DeepEqual(ev.Change, want) || ev.Change.Handover() {
			t.Fatalf("change %s (handover %v), want %s and no handover", ev.Change, ev.Change.Handover(), want)
		}
		l.noEvent(t, 300*time.Millisecond)
	})

	// roam0 (ignored) appears, comes up and gets an address: no Event. An
	// address on eth3 afterwards is one, on its own: the Watcher was
	// listening.
	t.Run("ignored interface", func(t *testing.T) {
		l := newRootLab(t)
		l.addVeth(t, "roam0", "roam0peer", "198.51.100.130/32")
		l.noEvent(t, 300*time.Millisecond)
		l.addAddr(t, "eth3", "198.51.100.2/24")
		ev, _ := l.event(t)
		if want := "eth3 +198.51.100.2/24"; ev.Change.String() != want {
			t.Fatalf("change %s, want %s", ev.Change, want)
		}
	})
}

// spread is "min / median / max" of ds.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("min %v, median %v, max %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
