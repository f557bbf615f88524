package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/roamnet/roam/api/roampb"
	"github.com/roamnet/roam/mobility"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// testMob is a node's mob without a device: ICE on a loopback socket, a
// signalling conn that never runs (sends fail), the config of goodConfig
// with peer b as its hub.
func testMob(t *testing.T) (*daemon, *mob) {
	t.Helper()
	cfg, err := parseConfig([]byte(goodConfig + "    hub: true\nbgp: {prefixes: [10.244.1.0/24]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: slog.New(slog.DiscardHandler), key: key, cfg: cfg,
		events: mobility.NewRecorder(mobility.RecorderConfig{})}
	m := &mob{d: d, log: d.log, port: 7471, kick: make(chan struct{}, 1),
		members: map[wgtypes.Key][]member{}, directs: map[wgtypes.Key]*directPeer{},
		peerEv: map[string]peerEvent{}, pongs: make(chan wgtypes.Key, 1)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	m.ice, err = tunnel.NewICE(tunnel.ICEConfig{Conn: conn, HostAddrs: func() []netip.Addr { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	m.sealer = tunnel.NewSealer(key, m.known)
	m.sig, err = tunnel.NewSignalConn(tunnel.SignalConfig{Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Sealer: m.sealer, Handler: m.onSignal, Hubs: m.hubAddrs})
	if err != nil {
		t.Fatal(err)
	}
	d.mob = m
	t.Cleanup(func() {
		m.cancel()
		m.wg.Wait()
		_ = m.ice.Close()
	})
	return d, m
}

func member2(t *testing.T, name string, key wgtypes.Key, hub bool, addrs ...string) *roampb.Member {
	t.Helper()
	return &roampb.Member{Name: name, PublicKey: key[:], Hub: hub, Addresses: addrs}
}

// TestDirectory: a hub's directory gives a direct path negotiation to each
// other node it lists, and to nothing else: not this node, not a configured
// peer, not a hub, not a member with a bad name or without an IPv4 overlay
// address, not one that takes a configured peer's name or overlay
// address. Until ICE selects a pair the node is a bare WireGuard peer (no
// allowed IPs, no BGP session, no probes); signals from it are accepted.
func TestDirectory(t *testing.T) {
	d, m := testMob(t)
	cfg := d.config()
	self := d.key.PublicKey()
	hubKey := cfg.peers[0].key
	var keys []wgtypes.Key
	for range 7 {
		k, _ := wgtypes.GeneratePrivateKey()
		keys = append(keys, k.PublicKey())
	}
	m.onSignal(hubKey, &roampb.Signal{Body: &roampb.Signal_Directory{Directory: &roampb.Directory{Members: []*roampb.Member{
		member2(t, "a", self, false, "100.64.0.1/32"),
		member2(t, "b", hubKey, true, "100.64.0.2/32"),
		member2(t, "c", keys[0], false, "100.64.0.3/32"),
		member2(t, "hub2", keys[1], true, "100.64.0.253/32"),
		member2(t, "bad name!", keys[2], false, "100.64.0.4/32"),
		member2(t, "v6only", keys[3], false, "fd00:64::5/128"),
		member2(t, "e", keys[4], false, "100.64.0.6/32", "fd00:64::6/128"),
		member2(t, "b", keys[5], false, "100.64.0.7/32"), // a configured peer's name
		member2(t, "f", keys[6], false, "100.64.0.2/32"), // b's overlay address
	}}}})
	m.mu.Lock()
	got := map[string]bool{}
	for _, dp := range m.directs {
		got[dp.m.name] = true
	}
	m.mu.Unlock()
	if len(got) != 2 || !got["c"] || !got["e"] {
		t.Fatalf("direct paths to %v, want c and e", got)
	}
	if !m.known(keys[0]) || m.known(keys[2]) || !m.known(hubKey) {
		t.Errorf("known: c %v, bad name %v, hub %v: want true, false, true", m.known(keys[0]), m.known(keys[2]), m.known(hubKey))
	}
	eff := d.effective(cfg)
	if len(eff.peers) != 3 {
		t.Fatalf("effective peers %+v, want b, c and e", eff.peers)
	}
	for _, p := range eff.peers[1:] {
		if !p.direct || len(p.addrs) != 0 || p.asn != 0 || p.probe != "off" || p.endpoint != "" {
			t.Errorf("peer %s before ICE: %+v, want a bare WireGuard peer", p.name, p)
		}
	}
	if n := len(probeTargets(eff)); n != 1 {
		t.Errorf("%d probe targets, want only the hub's", n)
	}
	if n := len(bgpConfig(eff, false).Neighbors); n != 1 {
		t.Errorf("%d BGP neighbours, want only the hub", n)
	}

	// A directory from a node that is not a hub peer is ignored; a new one
	// from the hub without c stops c's negotiation.
	m.onSignal(keys[0], &roampb.Signal{Body: &roampb.Signal_Directory{Directory: &roampb.Directory{}}})
	m.mu.Lock()
	n := len(m.directs)
	m.mu.Unlock()
	if n != 2 {
		t.Errorf("a directory from a node changed the direct paths to %d", n)
	}
	m.onSignal(hubKey, &roampb.Signal{Body: &roampb.Signal_Directory{Directory: &roampb.Directory{Members: []*roampb.Member{
		member2(t, "e", keys[4], false, "100.64.0.6/32"),
	}}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		_, hasC := m.directs[keys[0]]
		n := len(m.directs)
		m.mu.Unlock()
		if !hasC && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("c still negotiated after the hub dropped it (%d paths)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !m.isDirect("e") || m.isDirect("c") || m.isDirect("b") {
		t.Error("isDirect: want e only")
	}
}

// TestHubDirectory: a hub lists itself and every configured peer, with
// their overlay addresses and which are hubs.
func TestHubDirectory(t *testing.T) {
	d, m := testMob(t)
	dir := m.directory()
	if len(dir.GetMembers()) != 2 {
		t.Fatalf("directory %v: want the hub and b", dir)
	}
	self := d.key.PublicKey()
	if mb := dir.GetMembers()[0]; string(mb.GetPublicKey()) != string(self[:]) || !mb.GetHub() || mb.GetName() != "a" {
		t.Errorf("first member %v: want this node, a hub", mb)
	}
	if mb := dir.GetMembers()[1]; mb.GetName() != "b" || len(mb.GetAddresses()) != 1 || mb.GetAddresses()[0] != "100.64.0.2/32" {
		t.Errorf("second member %v: want b with 100.64.0.2/32", mb)
	}
}
