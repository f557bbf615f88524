package mobility

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

var (
	hubAddr  = netip.MustParseAddr("203.0.113.1")
	hubAddr2 = netip.MustParseAddr("203.0.113.2")
	wifiGw   = netip.MustParseAddr("192.0.2.1")
	wifiGw2  = netip.MustParseAddr("192.0.2.62")
	lteGw    = netip.MustParseAddr("192.0.2.65")
	wifiSrc  = netip.MustParseAddr("192.0.2.2")
	wifiSrc2 = netip.MustParseAddr("192.0.2.3")
	lteSrc   = netip.MustParseAddr("192.0.2.66")
)

func linkUp(name string, index int) Link {
	return Link{Name: name, Index: index, Up: true, Carrier: true}
}
func linkCut(name string, index int) Link { return Link{Name: name, Index: index, Up: true} }
func addrOn(iface, prefix string) Addr {
	return Addr{Iface: iface, Prefix: netip.MustParsePrefix(prefix)}
}
func pathVia(iface string, src, gw netip.Addr) Path {
	return Path{Target: hubAddr, Iface: iface, Src: src, Gateway: gw, Reachable: true}
}

// ignoreRoam is what roamd passes, short.
func ignoreRoam(iface string) bool { return iface == "lo" || iface == "roam0" }

// phone is a node on Wi-Fi (eth1) with LTE (eth2) standing by, reaching
// the hubAddr over eth1.
func phoneSnap() Snapshot {
	return Snapshot{
		Links: []Link{linkUp("eth1", 2), linkUp("eth2", 3), linkUp("lo", 1), linkUp("roam0", 9)},
		Addrs: []Addr{
			addrOn("eth1", "192.0.2.2/26"), addrOn("eth2", "192.0.2.66/26"),
			addrOn("eth1", "fe80::1/64"), addrOn("lo", "127.0.0.1/8"), addrOn("roam0", "100.64.0.1/32"),
		},
		Paths: []Path{pathVia("eth1", wifiSrc, wifiGw)},
	}
}

// edit returns a copy of s changed by f (s's slices untouched).
func editSnap(s Snapshot, f func(*Snapshot)) Snapshot {
	s = Snapshot{Links: slices.Clone(s.Links), Addrs: slices.Clone(s.Addrs), Paths: slices.Clone(s.Paths)}
	f(&s)
	return s
}

func TestDelta(t *testing.T) {
	tests := []struct {
		name     string
		old, new Snapshot
		want     Change
		handover bool
		str      string
	}{
		{
			name: "Wi-Fi cut: eth1 loses carrier, the path moves to eth2",
			old:  phoneSnap(),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				s.Links[0] = linkCut("eth1", 2)
				s.Paths[0] = pathVia("eth2", lteSrc, lteGw)
			}),
			want: Change{
				LinksDown:    []string{"eth1"},
				PathsChanged: []PathChange{{Old: pathVia("eth1", wifiSrc, wifiGw), New: pathVia("eth2", lteSrc, lteGw)}},
			},
			handover: true,
			str:      "eth1 down; path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> eth2 192.0.2.66 via 192.0.2.65",
		},
		{
			name: "DHCP: a new address on the same link, the path's source changes",
			old:  phoneSnap(),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				s.Addrs[0] = addrOn("eth1", "192.0.2.3/26")
				s.Paths[0] = pathVia("eth1", wifiSrc2, wifiGw)
			}),
			want: Change{
				AddrsAdded:   []Addr{addrOn("eth1", "192.0.2.3/26")},
				AddrsRemoved: []Addr{addrOn("eth1", "192.0.2.2/26")},
				PathsChanged: []PathChange{{Old: pathVia("eth1", wifiSrc, wifiGw), New: pathVia("eth1", wifiSrc2, wifiGw)}},
			},
			handover: true,
			str:      "eth1 -192.0.2.2/26; eth1 +192.0.2.3/26; path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> eth1 192.0.2.3 via 192.0.2.1",
		},
		{
			name: "an address on an unused interface is a change, not a handover",
			old:  editSnap(phoneSnap(), func(s *Snapshot) { s.Links = append(s.Links, linkUp("eth3", 4)) }),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				s.Links = append(s.Links, linkUp("eth3", 4))
				s.Addrs = append(s.Addrs, addrOn("eth3", "198.51.100.2/24"))
			}),
			want: Change{AddrsAdded: []Addr{addrOn("eth3", "198.51.100.2/24")}},
			str:  "eth3 +198.51.100.2/24",
		},
		{
			name: "a link that comes up without taking the path is not a handover",
			old:  editSnap(phoneSnap(), func(s *Snapshot) { s.Links = append(s.Links, linkCut("eth3", 4)) }),
			new:  editSnap(phoneSnap(), func(s *Snapshot) { s.Links = append(s.Links, linkUp("eth3", 4)) }),
			want: Change{LinksUp: []string{"eth3"}},
			str:  "eth3 up",
		},
		{
			name: "the ignored interface roam0, link-local and loopback never appear",
			old:  phoneSnap(),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				s.Links[3] = linkCut("roam0", 9)
				s.Links[2] = linkCut("lo", 1)
				s.Addrs = append(s.Addrs, addrOn("roam0", "100.64.0.9/32"), addrOn("roam0", "fd00::1/128"),
					addrOn("eth2", "fe80::2/64"), addrOn("eth1", "169.254.0.7/16"), addrOn("lo", "::1/128"))
				s.Links = append(s.Links, linkUp("roam1", 10))
			}),
			want: Change{LinksUp: []string{"roam1"}},
			str:  "roam1 up",
		},
		{
			name:     "only the gateway changes",
			old:      phoneSnap(),
			new:      editSnap(phoneSnap(), func(s *Snapshot) { s.Paths[0] = pathVia("eth1", wifiSrc, wifiGw2) }),
			want:     Change{PathsChanged: []PathChange{{Old: pathVia("eth1", wifiSrc, wifiGw), New: pathVia("eth1", wifiSrc, wifiGw2)}}},
			handover: true,
			str:      "path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> eth1 192.0.2.2 via 192.0.2.62",
		},
		{
			name: "the target becomes unreachable",
			old:  phoneSnap(),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				s.Links[0], s.Links[1] = linkCut("eth1", 2), linkCut("eth2", 3)
				s.Paths[0] = Path{Target: hubAddr}
			}),
			want: Change{
				LinksDown:    []string{"eth1", "eth2"},
				PathsChanged: []PathChange{{Old: pathVia("eth1", wifiSrc, wifiGw), New: Path{Target: hubAddr}}},
			},
			handover: true,
			str:      "eth1 down; eth2 down; path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> unreachable",
		},
		{
			name: "the target becomes reachable",
			old:  editSnap(phoneSnap(), func(s *Snapshot) { s.Paths[0] = Path{Target: hubAddr} }),
			new:  phoneSnap(),
			want: Change{
				PathsChanged: []PathChange{{Old: Path{Target: hubAddr}, New: pathVia("eth1", wifiSrc, wifiGw)}},
			},
			handover: true,
			str:      "path 203.0.113.1: unreachable -> eth1 192.0.2.2 via 192.0.2.1",
		},
		{
			name: "the path's source is removed while the kernel still reports it",
			old:  phoneSnap(),
			new:  editSnap(phoneSnap(), func(s *Snapshot) { s.Addrs = s.Addrs[1:] }),
			want: Change{
				AddrsRemoved: []Addr{addrOn("eth1", "192.0.2.2/26")},
				PathsChanged: []PathChange{{Old: pathVia("eth1", wifiSrc, wifiGw), New: pathVia("eth1", wifiSrc, wifiGw)}},
			},
			handover: true,
			str:      "eth1 -192.0.2.2/26; path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1, source removed",
		},
		{
			name: "a removed link that was up is down",
			old:  phoneSnap(),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				s.Links = slices.Delete(s.Links, 1, 2)
				s.Addrs = slices.Delete(s.Addrs, 1, 2)
			}),
			want: Change{
				LinksDown:    []string{"eth2"},
				AddrsRemoved: []Addr{addrOn("eth2", "192.0.2.66/26")},
			},
			str: "eth2 down; eth2 -192.0.2.66/26",
		},
		{
			name: "a target starts and one stops being tracked: a change, not a handover",
			old:  phoneSnap(),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				p := pathVia("eth2", lteSrc, lteGw)
				p.Target = hubAddr2
				s.Paths = []Path{p}
			}),
			want: Change{PathsChanged: []PathChange{
				{Old: pathVia("eth1", wifiSrc, wifiGw)},
				{New: Path{Target: hubAddr2, Iface: "eth2", Src: lteSrc, Gateway: lteGw, Reachable: true}},
			}},
			str: "path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> untracked; path 203.0.113.2: untracked -> eth2 192.0.2.66 via 192.0.2.65",
		},
		{
			name: "identical snapshots",
			old:  phoneSnap(),
			new:  phoneSnap(),
			str:  "no change",
		},
		{
			name: "the same snapshot in another order",
			old:  phoneSnap(),
			new: editSnap(phoneSnap(), func(s *Snapshot) {
				slices.Reverse(s.Links)
				slices.Reverse(s.Addrs)
			}),
			str: "no change",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := normalize(tt.old, ignoreRoam), normalize(tt.new, ignoreRoam)
			got := Delta(old, new)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Delta:\n got %+v\nwant %+v", got, tt.want)
			}
			if got.Empty() != reflect.DeepEqual(tt.want, Change{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
			if got.Handover() != tt.handover {
				t.Errorf("Handover() = %v, want %v", got.Handover(), tt.handover)
			}
			if got.String() != tt.str {
				t.Errorf("String():\n got %q\nwant %q", got.String(), tt.str)
			}

			// Order independence: Delta of the raw snapshots, their slices
			// shuffled, is Delta of the sorted ones.
			raw := Delta(tt.old, tt.new)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 20 {
				o, n := shuffleSnap(rng, tt.old), shuffleSnap(rng, tt.new)
				if got := Delta(o, n); !reflect.DeepEqual(got, raw) {
					t.Fatalf("shuffle %d: Delta\n got %+v\nwant %+v", i, got, raw)
				}
				if got := normalize(o, ignoreRoam); !reflect.DeepEqual(got, old) {
					t.Fatalf("shuffle %d: normalize\n got %+v\nwant %+v", i, got, old)
				}
			}
		})
	}
}

func shuffleSnap(rng *rand.Rand, s Snapshot) Snapshot {
	return editSnap(s, func(s *Snapshot) {
		rng.Shuffle(len(s.Links), func(i, j int) { s.Links[i], s.Links[j] = s.Links[j], s.Links[i] })
		rng.Shuffle(len(s.Addrs), func(i, j int) { s.Addrs[i], s.Addrs[j] = s.Addrs[j], s.Addrs[i] })
		rng.Shuffle(len(s.Paths), func(i, j int) { s.Paths[i], s.Paths[j] = s.Paths[j], s.Paths[i] })
	})
}

// Delta must not reorder or change the snapshots it is given: they belong
// to Events that other goroutines read.
func TestDeltaLeavesInputsAlone(t *testing.T) {
	old := editSnap(phoneSnap(), func(s *Snapshot) { slices.Reverse(s.Addrs); slices.Reverse(s.Links) })
	new := editSnap(old, func(s *Snapshot) { s.Paths[0] = pathVia("eth2", lteSrc, lteGw) })
	oldCopy, newCopy := editSnap(old, func(*Snapshot) {}), editSnap(new, func(*Snapshot) {})
	Delta(old, new)
	normalize(old, ignoreRoam)
	if !reflect.DeepEqual(old, oldCopy) || !reflect.DeepEqual(new, newCopy) {
		t.Fatal("Delta or normalize changed its input")
	}
}

func TestNormalize(t *testing.T) {
	raw := Snapshot{
		Links: []Link{linkUp("eth2", 3), linkUp("eth1", 2), linkUp("eth1", 2)},
		Addrs: []Addr{
			{Iface: "eth1", Prefix: netip.PrefixFrom(netip.AddrFrom16(wifiSrc.As16()), 26)}, // IPv4-mapped
			addrOn("eth1", "192.0.2.2/26"),
			addrOn("eth1", "2001:db8::2/64"),
			addrOn("eth1", "ff02::1/128"),
			addrOn("eth1", "0.0.0.0/0"),
			{Iface: "eth1"}, // invalid prefix
		},
		Paths: []Path{
			{Target: hubAddr2, Iface: "eth1", Src: wifiSrc, Reachable: false},
			pathVia("eth1", wifiSrc, wifiGw),
			{},
		},
	}
	want := Snapshot{
		Links: []Link{linkUp("eth1", 2), linkUp("eth2", 3)},
		Addrs: []Addr{addrOn("eth1", "192.0.2.2/26"), addrOn("eth1", "2001:db8::2/64")},
		Paths: []Path{pathVia("eth1", wifiSrc, wifiGw), {Target: hubAddr2}},
	}
	if got := normalize(raw, ignoreRoam); !reflect.DeepEqual(got, want) {
		t.Fatalf("normalize:\n got %+v\nwant %+v", got, want)
	}
}

func TestCleanTargets(t *testing.T) {
	got := cleanTargets([]netip.Addr{hubAddr2, {}, netip.AddrFrom16(hubAddr.As16()), hubAddr})
	if want := []netip.Addr{hubAddr, hubAddr2}; !slices.Equal(got, want) {
		t.Fatalf("cleanTargets = %v, want %v", got, want)
	}
}
