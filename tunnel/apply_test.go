package tunnel

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// key returns a fixed key made of n.
func key(n byte) wgtypes.Key {
	var k wgtypes.Key
	for i := range k {
		k[i] = n
	}
	return k
}

func pubKey(n byte) wgtypes.Key { return key(n).PublicKey() }

var (
	pfx = netip.MustParsePrefix
	ap  = netip.MustParseAddrPort
)

func testState() State {
	return State{
		PrivateKey: key(1),
		ListenPort: 51820,
		Addresses:  []netip.Prefix{pfx("100.64.0.1/32"), pfx("2001:db8::1/128")},
		Peers: []Peer{
			{Name: "b", PublicKey: pubKey(2), Endpoint: ap("192.0.2.2:51820"),
				AllowedIPs:          []netip.Prefix{pfx("100.64.0.2/32"), pfx("2001:db8::2/128"), pfx("198.51.100.0/24")},
				PersistentKeepalive: 25 * time.Second},
			{Name: "c", PublicKey: pubKey(3), AllowedIPs: []netip.Prefix{pfx("100.64.0.3/32")}},
		},
	}
}

func mustApply(t *testing.T, d fakeDevice, s State) {
	t.Helper()
	if err := d.Apply(s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func TestApplyBuildsTheWholeState(t *testing.T) {
	d := newFakeDevice(Config{Name: "roam0"}, true)
	mustApply(t, d, testState())

	live, _ := d.wg.Device("roam0")
	if live.PublicKey != pubKey(1) || live.ListenPort != 51820 {
		t.Errorf("device: key %s port %d, want %s 51820", live.PublicKey, live.ListenPort, pubKey(1))
	}
	if len(live.Peers) != 2 {
		t.Fatalf("peers: got %d, want 2", len(live.Peers))
	}
	b := live.Peers[0]
	if b.PublicKey != pubKey(2) || udpAddrPort(b.Endpoint) != ap("192.0.2.2:51820") || b.PersistentKeepaliveInterval != 25*time.Second {
		t.Errorf("peer b: %+v", b)
	}
	if got := livePrefixes(b.AllowedIPs); !slices.Equal(got, sortedPrefixes(testState().Peers[0].AllowedIPs)) {
		t.Errorf("peer b allowed IPs: %v", got)
	}
	if c := live.Peers[1]; c.Endpoint != nil || c.PersistentKeepaliveInterval != 0 {
		t.Errorf("peer c: endpoint %v keepalive %s, want none", c.Endpoint, c.PersistentKeepaliveInterval)
	}
	l := d.links.links["roam0"]
	if !l.up || l.mtu != DefaultMTU {
		t.Errorf("link: up %v mtu %d, want up %d", l.up, l.mtu, DefaultMTU)
	}
	if !slices.Equal(l.addrs, testState().Addresses) {
		t.Errorf("addresses: %v", l.addrs)
	}
	wantRoutes := []netip.Prefix{pfx("100.64.0.2/32"), pfx("100.64.0.3/32"), pfx("198.51.100.0/24"), pfx("2001:db8::2/128")}
	if got, _ := d.links.Routes("roam0"); !slices.Equal(got, wantRoutes) {
		t.Errorf("routes: %v, want %v", got, wantRoutes)
	}
	if d.eng.ups == 0 {
		t.Error("wireguard-go was never brought up")
	}
	if c := d.wg.lastConfig(); c.ReplacePeers {
		t.Error("ReplacePeers was set")
	}
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	for _, userspace := range []bool{false, true} {
		d := newFakeDevice(Config{Name: "roam0"}, userspace)
		mustApply(t, d, testState())
		wgCalls, linkChanges := d.wg.calls(), d.links.changeCount()
		*d.clock = d.clock.Add(time.Hour)
		mustApply(t, d, testState())
		if got := d.wg.calls() - wgCalls; got != 0 {
			t.Errorf("userspace=%v: second Apply configured WireGuard %d times: %+v", userspace, got, d.wg.lastConfig())
		}
		if got := d.links.changes[linkChanges:]; len(got) != 0 {
			t.Errorf("userspace=%v: second Apply changed the link: %v", userspace, got)
		}
	}
}

func TestApplyKeepsRoamedEndpoint(t *testing.T) {
	d := newFakeDevice(Config{}, true)
	s := testState()
	mustApply(t, d, s)
	roamed := ap("203.0.113.7:40000")
	d.wg.roam("roam0", pubKey(2), roamed, *d.clock)
	calls := d.wg.calls()

	mustApply(t, d, s)
	if d.wg.calls() != calls {
		t.Errorf("re-applying configured WireGuard: %+v", d.wg.lastConfig())
	}
	ps, _ := d.Peers()
	if ps[0].Name != "b" || ps[0].Endpoint != roamed {
		t.Fatalf("peer b endpoint %s, want the roamed %s", ps[0].Endpoint, roamed)
	}

	// A new endpoint in the desired state is sent, and only it.
	s.Peers[0].Endpoint = ap("192.0.2.22:51820")
	mustApply(t, d, s)
	c := d.wg.lastConfig()
	if len(c.Peers) != 1 || c.Peers[0].PublicKey != pubKey(2) || udpAddrPort(c.Peers[0].Endpoint) != ap("192.0.2.22:51820") ||
		c.Peers[0].ReplaceAllowedIPs || c.Peers[0].PersistentKeepaliveInterval != nil || c.PrivateKey != nil || c.ListenPort != nil {
		t.Errorf("config for a new endpoint: %+v", c)
	}
	if ps, _ := d.Peers(); ps[0].Endpoint != ap("192.0.2.22:51820") {
		t.Errorf("endpoint after change: %s", ps[0].Endpoint)
	}
}

func TestApplySendsOnlyChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(*State)
		check  func(*testing.T, wgtypes.Config)
		routes []string // routes changed
	}{
		{
			name:   "allowed IPs of one peer",
			change: func(s *State) { s.Peers[1].AllowedIPs = append(s.Peers[1].AllowedIPs, pfx("203.0.113.0/24")) },
			check: func(t *testing.T, c wgtypes.Config) {
				if len(c.Peers) != 1 || c.Peers[0].PublicKey != pubKey(3) || !c.Peers[0].ReplaceAllowedIPs || len(c.Peers[0].AllowedIPs) != 2 || c.Peers[0].Endpoint != nil {
					t.Errorf("config: %+v", c)
				}
			},
			routes: []string{"route add roam0 203.0.113.0/24"},
		},
		{
			name:   "keepalive off",
			change: func(s *State) { s.Peers[0].PersistentKeepalive = 0 },
			check: func(t *testing.T, c wgtypes.Config) {
				if len(c.Peers) != 1 || c.Peers[0].PersistentKeepaliveInterval == nil || *c.Peers[0].PersistentKeepaliveInterval != 0 ||
					c.Peers[0].ReplaceAllowedIPs || c.Peers[0].Endpoint != nil {
					t.Errorf("config: %+v", c)
				}
			},
		},
		{
			name:   "peer removed",
			change: func(s *State) { s.Peers = s.Peers[:1] },
			check: func(t *testing.T, c wgtypes.Config) {
				if c.ReplacePeers || len(c.Peers) != 1 || c.Peers[0].PublicKey != pubKey(3) || !c.Peers[0].Remove {
					t.Errorf("config: %+v", c)
				}
			},
			routes: []string{"route del roam0 100.64.0.3/32"},
		},
		{
			name: "peer added",
			change: func(s *State) {
				s.Peers = append(s.Peers, Peer{Name: "d", PublicKey: pubKey(4), AllowedIPs: []netip.Prefix{pfx("100.64.0.4/32")}})
			},
			check: func(t *testing.T, c wgtypes.Config) {
				if len(c.Peers) != 1 || c.Peers[0].PublicKey != pubKey(4) || !c.Peers[0].ReplaceAllowedIPs {
					t.Errorf("config: %+v", c)
				}
			},
			routes: []string{"route add roam0 100.64.0.4/32"},
		},
		{
			name: "prefix moves between peers",
			change: func(s *State) {
				s.Peers[0].AllowedIPs = s.Peers[0].AllowedIPs[:2]
				s.Peers[1].AllowedIPs = append(s.Peers[1].AllowedIPs, pfx("198.51.100.0/24"))
			},
			check: func(t *testing.T, c wgtypes.Config) {
				if len(c.Peers) != 2 {
					t.Errorf("config: %+v", c)
				}
			},
		},
		{
			name:   "listen port",
			change: func(s *State) { s.ListenPort = 51821 },
			check: func(t *testing.T, c wgtypes.Config) {
				if c.ListenPort == nil || *c.ListenPort != 51821 || c.PrivateKey != nil || len(c.Peers) != 0 {
					t.Errorf("config: %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDevice(Config{}, true)
			mustApply(t, d, testState())
			calls, changes := d.wg.calls(), d.links.changeCount()
			s := testState()
			tt.change(&s)
			mustApply(t, d, s)
			if d.wg.calls() != calls+1 {
				t.Fatalf("WireGuard configured %d times, want once", d.wg.calls()-calls)
			}
			tt.check(t, d.wg.lastConfig())
			if got := d.links.changes[changes:]; !slices.Equal(got, tt.routes) {
				t.Errorf("link changes %q, want %q", got, tt.routes)
			}
			// And the new state is stable.
			calls, changes = d.wg.calls(), d.links.changeCount()
			mustApply(t, d, s)
			if d.wg.calls() != calls || d.links.changeCount() != changes {
				t.Errorf("applying the changed state again changed something: %+v %v", d.wg.lastConfig(), d.links.changes[changes:])
			}
		})
	}
}

func TestApplyCorrectsDrift(t *testing.T) {
	d := newFakeDevice(Config{MTU: 1380}, false)
	mustApply(t, d, testState())
	// Someone else: a peer by hand, a route and an address removed, MTU and
	// an address changed.
	stranger := wgtypes.PeerConfig{PublicKey: pubKey(9), AllowedIPs: ipNets([]netip.Prefix{pfx("100.64.0.9/32")})}
	_ = d.wg.ConfigureDevice("roam0", wgtypes.Config{Peers: []wgtypes.PeerConfig{stranger}})
	_ = d.links.DelRoute("roam0", pfx("100.64.0.3/32"))
	_ = d.links.DelAddr("roam0", pfx("100.64.0.1/32"))
	_ = d.links.AddAddr("roam0", pfx("100.64.9.9/32"))
	_ = d.links.AddAddr("roam0", pfx("fe80::1/64"))
	_ = d.links.SetMTU("roam0", 1500)
	changes := d.links.changeCount()

	mustApply(t, d, testState())
	if c := d.wg.lastConfig(); len(c.Peers) != 1 || c.Peers[0].PublicKey != pubKey(9) || !c.Peers[0].Remove {
		t.Errorf("stranger not removed: %+v", c)
	}
	got := d.links.changes[changes:]
	want := []string{"mtu roam0 1380", "addr del roam0 100.64.9.9/32", "addr add roam0 100.64.0.1/32", "route add roam0 100.64.0.3/32"}
	if !slices.Equal(got, want) {
		t.Errorf("link changes %q, want %q (the link-local address stays)", got, want)
	}
}

func TestApplyAdoptedDeviceKeepsWorkingEndpoint(t *testing.T) {
	// A kept device from an earlier run: the peer roamed and has a fresh
	// handshake there; a new process applies its configured endpoint.
	d := newFakeDevice(Config{}, false)
	mustApply(t, d, testState())
	roamed := ap("203.0.113.7:40000")
	d.wg.roam("roam0", pubKey(2), roamed, d.clock.Add(-time.Minute))

	fresh := newDevice(Config{Name: "roam0", MTU: DefaultMTU}, ModeKernel, d.log, d.wg, d.links, nil, nil)
	fresh.now = func() time.Time { return *d.clock }
	calls := d.wg.calls()
	if err := fresh.Apply(testState()); err != nil {
		t.Fatal(err)
	}
	if d.wg.calls() != calls {
		t.Errorf("adopting reconfigured WireGuard: %+v", d.wg.lastConfig())
	}
	// Without a recent handshake the configured endpoint wins.
	d.wg.roam("roam0", pubKey(2), roamed, d.clock.Add(-time.Hour))
	fresh.last = nil
	if err := fresh.Apply(testState()); err != nil {
		t.Fatal(err)
	}
	if ps, _ := fresh.Peers(); ps[0].Endpoint != ap("192.0.2.2:51820") {
		t.Errorf("endpoint %s, want the configured one", ps[0].Endpoint)
	}
}

func TestApplyReportsEveryFailure(t *testing.T) {
	d := newFakeDevice(Config{}, false)
	delete(d.wg.devs, "roam0") // WireGuard part fails; link part still runs
	err := d.Apply(testState())
	if err == nil || !strings.Contains(err.Error(), "tunnel: apply to roam0: read wireguard device") {
		t.Fatalf("Apply: %v", err)
	}
	if !d.links.links["roam0"].up || len(d.links.links["roam0"].routes) != 4 {
		t.Errorf("link part was skipped: %+v", d.links.links["roam0"])
	}
}

func TestApplyRejectsBadState(t *testing.T) {
	tests := []struct {
		name   string
		change func(*State)
		want   string
	}{
		{"no key", func(s *State) { s.PrivateKey = wgtypes.Key{} }, "tunnel: state: private key is missing"},
		{"port", func(s *State) { s.ListenPort = 70000 }, "listen port 70000 out of range"},
		{"bad address", func(s *State) { s.Addresses = append(s.Addresses, netip.Prefix{}) }, "addresses[2]: \"invalid Prefix\" is not a valid address/prefix"},
		{"address twice", func(s *State) { s.Addresses = append(s.Addresses, pfx("100.64.0.1/32")) }, "addresses[2]: 100.64.0.1/32 is listed twice"},
		{"peer key missing", func(s *State) { s.Peers[1].PublicKey = wgtypes.Key{} }, `peers[1] ("c"): public key is missing`},
		{"own key", func(s *State) { s.Peers[1].PublicKey = pubKey(1) }, "is this device's own"},
		{"key twice", func(s *State) { s.Peers[1].PublicKey = pubKey(2) }, `peers[1] ("c"): public key ` + pubKey(2).String() + ` is also peers[0]'s`},
		{"endpoint port 0", func(s *State) { s.Peers[0].Endpoint = ap("192.0.2.2:0") }, "endpoint 192.0.2.2:0 needs an address and a port"},
		{"keepalive fraction", func(s *State) { s.Peers[0].PersistentKeepalive = 1500 * time.Millisecond }, "persistent keepalive 1.5s: want whole seconds"},
		{"keepalive negative", func(s *State) { s.Peers[0].PersistentKeepalive = -time.Second }, "persistent keepalive -1s"},
		{"prefix on two peers", func(s *State) { s.Peers[1].AllowedIPs = append(s.Peers[1].AllowedIPs, pfx("198.51.100.1/24")) }, `peers[1] ("c"): allowed IP 198.51.100.0/24 is also peers[0]'s`},
		{"bad allowed IP", func(s *State) { s.Peers[1].AllowedIPs = append(s.Peers[1].AllowedIPs, netip.Prefix{}) }, "allowed_ips[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeDevice(Config{}, false)
			s := testState()
			tt.change(&s)
			err := d.Apply(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply: %v, want an error containing %q", err, tt.want)
			}
			if d.wg.calls() != 0 || d.links.changeCount() != 0 {
				t.Error("a rejected state changed the device")
			}
		})
	}
}

func TestPeersNamesLiveState(t *testing.T) {
	d := newFakeDevice(Config{}, true)
	mustApply(t, d, testState())
	hs := d.clock.Add(-5 * time.Second)
	d.wg.roam("roam0", pubKey(3), ap("198.51.100.9:1234"), hs)
	stranger := wgtypes.PeerConfig{PublicKey: pubKey(9), AllowedIPs: ipNets([]netip.Prefix{pfx("100.64.0.9/32")})}
	_ = d.wg.ConfigureDevice("roam0", wgtypes.Config{Peers: []wgtypes.PeerConfig{stranger}})

	ps, err := d.Peers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"", "b", "c"}) {
		t.Fatalf("names %q, want the stranger unnamed first", names)
	}
	c := ps[2]
	if c.PublicKey != pubKey(3) || c.Endpoint != ap("198.51.100.9:1234") || !c.LastHandshake.Equal(hs) ||
		!slices.Equal(c.AllowedIPs, []netip.Prefix{pfx("100.64.0.3/32")}) {
		t.Errorf("peer c: %+v", c)
	}
	if !ps[1].LastHandshake.IsZero() || ps[1].PersistentKeepalive != 25*time.Second {
		t.Errorf("peer b: %+v", ps[1])
	}
}

func TestClose(t *testing.T) {
	t.Run("kernel", func(t *testing.T) {
		d := newFakeDevice(Config{}, false)
		mustApply(t, d, testState())
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := d.links.links["roam0"]; ok {
			t.Error("link still there")
		}
		if !d.wg.closed || !d.links.closed {
			t.Error("clients not closed")
		}
		if err := d.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := d.Apply(testState()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Apply after Close: %v", err)
		}
		if _, err := d.Peers(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Peers after Close: %v", err)
		}
	})
	t.Run("kernel keep", func(t *testing.T) {
		d := newFakeDevice(Config{Keep: true}, false)
		mustApply(t, d, testState())
		changes := d.links.changeCount()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if d.links.changeCount() != changes {
			t.Errorf("Close with Keep changed the link: %v", d.links.changes[changes:])
		}
	})
	t.Run("userspace", func(t *testing.T) {
		d := newFakeDevice(Config{Keep: true}, true)
		mustApply(t, d, testState())
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !d.eng.closed {
			t.Error("wireguard-go not stopped")
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // error substring; "" = valid
	}{
		{"defaults", Config{}, ""},
		{"kernel", Config{Name: "wg-1", Mode: "kernel", MTU: 1280}, ""},
		{"long name", Config{Name: "averyveryverylongname"}, `tunnel: config: name: "averyveryverylongname" is not a valid interface name`},
		{"slash", Config{Name: "a/b"}, `name: "a/b"`},
		{"mode", Config{Mode: "fast"}, `tunnel: config: mode: "fast": want auto, kernel or userspace`},
		{"mtu low", Config{MTU: 576}, "tunnel: config: mtu: 576 out of range 1280..9000"},
		{"mtu high", Config{MTU: 9001}, "mtu: 9001 out of range"},
		{"table", Config{Table: 100}, ""},
		{"table local", Config{Table: 255}, "tunnel: config: table: 255 is not a routing table"},
		{"table negative", Config{Table: -1}, "table: -1 is not a routing table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			err := c.validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Name == "" || c.Mode == "" || c.MTU == 0 || c.Table == 0 {
					t.Errorf("defaults not filled: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate: %v, want %q", err, tt.want)
			}
		})
	}
}
