package tunnel

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestSetEndpoint(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	conf, other := ap("192.0.2.2:51820"), ap("203.0.113.7:40000")
	live := func(ep netip.AddrPort, hsAgo time.Duration) *wgtypes.Peer {
		p := &wgtypes.Peer{}
		if ep.IsValid() {
			p.Endpoint = net.UDPAddrFromAddrPort(ep)
		}
		if hsAgo > 0 {
			p.LastHandshakeTime = now.Add(-hsAgo)
		}
		return p
	}
	tests := []struct {
		name string
		want netip.AddrPort
		last *Peer
		live *wgtypes.Peer
		set  bool
	}{
		{"none configured", netip.AddrPort{}, nil, live(other, time.Second), false},
		{"unchanged since last apply, roamed", conf, &Peer{Endpoint: conf}, live(other, time.Second), false},
		{"unchanged since last apply, roamed, stale", conf, &Peer{Endpoint: conf}, live(other, time.Hour), false},
		{"changed since last apply", other, &Peer{Endpoint: conf}, live(conf, time.Second), true},
		{"configured now, none before", conf, &Peer{}, live(other, time.Second), true},
		{"adopted, live matches", conf, nil, live(conf, 0), false},
		{"adopted, live has none", conf, nil, live(netip.AddrPort{}, 0), true},
		{"adopted, roamed with fresh handshake", conf, nil, live(other, time.Minute), false},
		{"adopted, roamed, handshake too old", conf, nil, live(other, 4*time.Minute), true},
		{"adopted, roamed, never a handshake", conf, nil, live(other, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := setEndpoint(Peer{Endpoint: tt.want}, tt.last, tt.live, now); got != tt.set {
				t.Errorf("setEndpoint = %v, want %v", got, tt.set)
			}
		})
	}
}

func TestWGChangesNoneForSameState(t *testing.T) {
	want, err := testState().normalized()
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeWG("roam0")
	cfg, changes := wgChanges(&wgtypes.Device{}, nil, want, time.Now())
	if err := f.ConfigureDevice("roam0", cfg); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 4 { // key, port, two peers
		t.Errorf("changes for a new device: %q", changes)
	}
	live, _ := f.Device("roam0")
	if cfg, changes := wgChanges(live, &want, want, time.Now()); len(changes) != 0 || len(cfg.Peers) != 0 || cfg.PrivateKey != nil || cfg.ListenPort != nil {
		t.Errorf("changes against itself: %q %+v", changes, cfg)
	}
}

func TestAddrChanges(t *testing.T) {
	live := []netip.Prefix{pfx("100.64.0.1/32"), pfx("100.64.9.9/32"), pfx("fe80::1234/64")}
	want := []netip.Prefix{pfx("100.64.0.1/32"), pfx("2001:db8::1/128")}
	add, del := addrChanges(live, want)
	if !slices.Equal(add, []netip.Prefix{pfx("2001:db8::1/128")}) || !slices.Equal(del, []netip.Prefix{pfx("100.64.9.9/32")}) {
		t.Errorf("add %v del %v", add, del)
	}
	// The same address with another length is another address.
	add, del = addrChanges([]netip.Prefix{pfx("100.64.0.1/24")}, []netip.Prefix{pfx("100.64.0.1/32")})
	if len(add) != 1 || len(del) != 1 {
		t.Errorf("length change: add %v del %v", add, del)
	}
}

func TestWantRoutes(t *testing.T) {
	peers := []Peer{
		{AllowedIPs: []netip.Prefix{pfx("100.64.0.2/32"), pfx("0.0.0.0/0")}},
		{AllowedIPs: []netip.Prefix{pfx("198.51.100.0/24"), pfx("::/0"), pfx("2001:db8::/64")}},
	}
	got := wantRoutes(peers)
	want := []netip.Prefix{pfx("100.64.0.2/32"), pfx("198.51.100.0/24"), pfx("2001:db8::/64")}
	if !slices.Equal(got, want) {
		t.Errorf("wantRoutes = %v, want %v (no default routes)", got, want)
	}
}

func TestPrefixConversions(t *testing.T) {
	for _, s := range []string{"100.64.0.1/32", "198.51.100.0/24", "0.0.0.0/0", "2001:db8::/64", "::/0", "2001:db8::1/128"} {
		p := pfx(s)
		n := ipNets([]netip.Prefix{p})[0]
		back, ok := ipNetPrefix(n)
		if !ok || back != p {
			t.Errorf("%s -> %s -> %s", p, n.String(), back)
		}
	}
	// wgctrl and netlink may hand IPv4 as 16-byte addresses with 128-bit masks.
	n := net.IPNet{IP: net.ParseIP("198.51.100.0"), Mask: net.CIDRMask(120, 128)}
	if got, ok := ipNetPrefix(n); !ok || got != pfx("198.51.100.0/24") {
		t.Errorf("v4-in-v6 net: %v %v", got, ok)
	}
	if got, ok := ipNetAddr(&net.IPNet{IP: net.ParseIP("100.64.0.1"), Mask: net.CIDRMask(32, 32)}); !ok || got != pfx("100.64.0.1/32") {
		t.Errorf("address: %v", got)
	}
}
