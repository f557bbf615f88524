package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

type signalGot struct {
	from wgtypes.Key
	m    *roampb.Signal
}

// sigNode is one SignalConn of a test, running until the test ends.
type sigNode struct {
	name string
	priv wgtypes.Key
	addr netip.Addr
	conn *SignalConn
	got  chan signalGot
}

func (n *sigNode) pub() wgtypes.Key { return n.priv.PublicKey() }

// next waits for the next Signal n's Handler got.
func (n *sigNode) next(t *testing.T) signalGot {
	t.Helper()
	select {
	case g := <-n.got:
		return g
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no signal within 5 s; stats %v", n.name, n.conn.Stats())
		return signalGot{}
	}
}

// none fails if n's Handler got a Signal.
func (n *sigNode) none(t *testing.T) {
	t.Helper()
	select {
	case g := <-n.got:
		t.Errorf("%s: unexpected signal from %s: %v", n.name, g.from, g.m)
	default:
	}
}

// waitStat waits until n's counter key reaches want.
func (n *sigNode) waitStat(t *testing.T, key string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.conn.Stats()[key] < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s stays below %d within 5 s; stats %v", n.name, key, want, n.conn.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startSigNode runs a SignalConn on listen until the test ends.
func startSigNode(t *testing.T, name string, priv wgtypes.Key, listen netip.AddrPort, known func(wgtypes.Key) bool,
	relay *Relay, hubs func() []netip.AddrPort) *sigNode {
	t.Helper()
	n := &sigNode{name: name, priv: priv, addr: listen.Addr(), got: make(chan signalGot, 16)}
	c, err := NewSignalConn(SignalConfig{
		Listen: listen,
		Sealer: NewSealer(priv, known),
		Relay:  relay,
		Hubs:   hubs,
		Handler: func(from wgtypes.Key, m *roampb.Signal) {
			select {
			case n.got <- signalGot{from, m}:
			default:
				t.Errorf("%s: handler channel full", name)
			}
		},
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.conn = c
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: Run did not return within 5 s of the cancel", name)
		}
	})
	select {
	case <-c.Ready():
	case err := <-errc:
		t.Fatalf("%s: Run: %v", name, err)
	}
	return n
}

// signalNet is a hub h and nodes a and b on loopback addresses 127.x.y.1-3
// (their overlay addresses in the test), all on h's port; c is a node the
// hub knows (at .4) and a and b do not.
type signalNet struct {
	h, a, b *sigNode
	c       wgtypes.Key
	cAddr   netip.Addr
}

func newSignalNet(t *testing.T) *signalNet {
	base := [4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), 0}
	addr := func(i byte) netip.Addr { b := base; b[3] = i; return netip.AddrFrom4(b) }
	hPriv, aPriv, bPriv, cPriv := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	addrs := map[wgtypes.Key]netip.Addr{
		hPriv.PublicKey(): addr(1), aPriv.PublicKey(): addr(2), bPriv.PublicKey(): addr(3), cPriv.PublicKey(): addr(4),
	}
	lookup := func(k wgtypes.Key) (netip.Addr, bool) { a, ok := addrs[k]; return a, ok }
	relay := NewRelay(hPriv.PublicKey(), lookup, func(a netip.Addr) bool { return a == addr(1) })
	n := &signalNet{c: cPriv, cAddr: addr(4)}
	n.h = startSigNode(t, "h", hPriv, netip.AddrPortFrom(addr(1), 0), knownKeys(aPriv, bPriv), relay, nil)
	hubs := func() []netip.AddrPort { return []netip.AddrPort{n.h.conn.Addr()} }
	port := n.h.conn.Addr().Port()
	n.a = startSigNode(t, "a", aPriv, netip.AddrPortFrom(addr(2), port), knownKeys(bPriv, hPriv), nil, hubs)
	n.b = startSigNode(t, "b", bPriv, netip.AddrPortFrom(addr(3), port), knownKeys(aPriv, hPriv), nil, hubs)
	return n
}

// inject sends pkt from src (any port) to dst.
func inject(t *testing.T, src netip.Addr, dst netip.AddrPort, pkt []byte) {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteToUDPAddrPort(pkt, dst); err != nil {
		t.Fatal(err)
	}
}

func TestSignalConnRelay(t *testing.T) {
	checkGoroutines(t)
	n := newSignalNet(t)

	// a sends an offer to b through the hub.
	offer := testOffer()
	if err := n.a.conn.Send(n.b.pub(), offer); err != nil {
		t.Fatal(err)
	}
	if g := n.b.next(t); g.from != n.a.pub() || !proto.Equal(g.m, offer) {
		t.Fatalf("b got %v from %s, want %v from a (%s)", g.m, g.from, offer, n.a.pub())
	}
	// The hub relayed it without opening it.
	if s := n.h.conn.Stats(); s["relayed"] != 1 || s["received"] != 0 {
		t.Errorf("hub stats %v: want relayed 1, received 0", s)
	}
	n.h.none(t)

	// The hub sends its directory to b straight.
	dir := &roampb.Signal{Body: &roampb.Signal_Directory{Directory: &roampb.Directory{Members: []*roampb.Member{
		{Name: "a", PublicKey: pubBytes(n.a.pub()), Addresses: []string{n.a.addr.String() + "/32"}},
	}}}}
	if err := n.h.conn.Send(n.b.pub(), dir); err != nil {
		t.Fatal(err)
	}
	if g := n.b.next(t); g.from != n.h.pub() || !proto.Equal(g.m, dir) {
		t.Fatalf("b got %v from %s, want the directory from h", g.m, g.from)
	}
	// b pings the hub, which answers.
	ping := &roampb.Signal{Body: &roampb.Signal_Ping{Ping: &roampb.Ping{}}}
	if err := n.b.conn.SendTo(n.h.conn.Addr(), n.h.pub(), ping); err != nil {
		t.Fatal(err)
	}
	if g := n.h.next(t); g.from != n.b.pub() || g.m.GetPing() == nil {
		t.Fatalf("h got %v from %s, want a ping from b", g.m, g.from)
	}
	if err := n.h.conn.SendTo(netip.AddrPortFrom(n.b.addr, n.h.conn.Addr().Port()), n.b.pub(), ping); err != nil {
		t.Fatal(err)
	}
	if g := n.b.next(t); g.from != n.h.pub() || g.m.GetPing() == nil {
		t.Fatalf("b got %v from %s, want a ping from h", g.m, g.from)
	}
	if s := n.a.conn.Stats(); s["sent"] != 1 {
		t.Errorf("a stats %v: want sent 1", s)
	}
}

func TestSignalConnDrops(t *testing.T) {
	checkGoroutines(t)
	n := newSignalNet(t)
	hub := n.h.conn.Addr()
	at := func(node *sigNode) netip.AddrPort { return netip.AddrPortFrom(node.addr, hub.Port()) }
	seal := func(priv, to wgtypes.Key, clock time.Time, edit func(*roampb.SignalEnvelope)) []byte {
		pkt, err := newTestSealer(priv, &clock).Seal(to, testOffer())
		if err != nil {
			t.Fatal(err)
		}
		if edit == nil {
			return pkt
		}
		env := new(roampb.SignalEnvelope)
		if err := proto.Unmarshal(pkt, env); err != nil {
			t.Fatal(err)
		}
		edit(env)
		return mustMarshal(t, env)
	}
	now := time.Now()
	stranger := newTestKey(t)

	tests := []struct {
		name string
		pkt  []byte
		src  netip.Addr     // sent from
		dst  netip.AddrPort // sent to
		at   *sigNode       // the node that drops it
		stat string
	}{
		{"b's key sent by a", seal(n.b.priv, n.a.pub(), now, nil), n.a.addr, hub, n.h, "dropped_spoofed"},
		{"sender unknown to the hub", seal(stranger, n.b.pub(), now, nil), n.cAddr, hub, n.h, "dropped_unknown_sender"},
		{"sender unknown to b", seal(n.c, n.b.pub(), now, nil), n.cAddr, hub, n.b, "dropped_unknown_sender"},
		{"recipient unknown to the hub", seal(n.a.priv, stranger.PublicKey(), now, nil), n.a.addr, hub, n.h, "dropped_unknown_recipient"},
		{"forged box", seal(n.a.priv, n.b.pub(), now, func(e *roampb.SignalEnvelope) { e.Box[20] ^= 0x80 }), n.a.addr, hub, n.b, "dropped_forged"},
		{"readdressed to the hub", seal(n.a.priv, n.b.pub(), now, func(e *roampb.SignalEnvelope) { e.To = pubBytes(n.h.pub()) }), n.a.addr, hub, n.h, "dropped_forged"},
		{"for a, sent to b", seal(n.h.priv, n.a.pub(), now, nil), n.h.addr, at(n.b), n.b, "dropped_not_for_us"},
		{"stale", seal(n.a.priv, n.b.pub(), now.Add(-10*time.Minute), nil), n.a.addr, hub, n.b, "dropped_stale"},
		{"two hops already", seal(n.a.priv, n.b.pub(), now, func(e *roampb.SignalEnvelope) { e.Hops = 2 }), n.a.addr, hub, n.h, "dropped_hops"},
		{"not protobuf", []byte("\xff\xff\xff\xff"), n.a.addr, hub, n.h, "dropped_malformed"},
		{"oversize to the hub", make([]byte, MaxSignalSize+1), n.a.addr, hub, n.h, "dropped_too_large"},
		{"oversize to b", make([]byte, 9000), n.a.addr, at(n.b), n.b, "dropped_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.at.conn.Stats()[tt.stat]
			inject(t, tt.src, tt.dst, tt.pkt)
			tt.at.waitStat(t, tt.stat, before+1)
		})
	}

	t.Run("replay of a captured datagram", func(t *testing.T) {
		pkt := seal(n.a.priv, n.b.pub(), now, nil)
		inject(t, n.a.addr, hub, pkt)
		if g := n.b.next(t); g.from != n.a.pub() {
			t.Fatalf("b got a signal from %s, want a", g.from)
		}
		inject(t, n.a.addr, hub, pkt)
		n.b.waitStat(t, "dropped_replay", 1)
		inject(t, n.h.addr, at(n.b), pkt) // straight to b, as a hub would
		n.b.waitStat(t, "dropped_replay", 2)
	})

	n.a.none(t)
	n.b.none(t)
	n.h.none(t)
	if s := n.h.conn.Stats(); s["received"] != 0 {
		t.Errorf("hub stats %v: the hub opened something", s)
	}
}

func pubBytes(k wgtypes.Key) []byte { return k[:] }

func TestSignalConnLifecycle(t *testing.T) {
	checkGoroutines(t)
	priv := newTestKey(t)
	cfg := SignalConfig{
		Listen:  netip.MustParseAddrPort("127.0.0.1:0"),
		Sealer:  NewSealer(priv, nil),
		Hubs:    func() []netip.AddrPort { return nil },
		Handler: func(wgtypes.Key, *roampb.Signal) {},
	}
	c, err := NewSignalConn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(priv.PublicKey(), testOffer()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send before Run: %v, want %v", err, net.ErrClosed)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	<-c.Ready()
	if err := c.Send(priv.PublicKey(), testOffer()); err == nil || !strings.Contains(err.Error(), "no hubs") {
		t.Errorf("Send without hubs: %v, want an error saying so", err)
	}
	// A second SignalConn on the same address and port cannot listen.
	cfg.Listen = c.Addr()
	c2, err := NewSignalConn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Run(t.Context()); err == nil {
		t.Errorf("Run on %s, which is taken: no error", cfg.Listen)
	}
	if err := c.Run(t.Context()); err == nil {
		t.Error("Run a second time: no error")
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after cancel: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of the cancel")
	}
	if c.Addr().IsValid() {
		t.Errorf("Addr after Run returned: %s, want none", c.Addr())
	}
}

func TestSignalConfigValidate(t *testing.T) {
	s := NewSealer(newTestKey(t), nil)
	h := func(wgtypes.Key, *roampb.Signal) {}
	hubs := func() []netip.AddrPort { return nil }
	listen := netip.MustParseAddrPort("100.64.0.1:7471")
	tests := []struct {
		name string
		cfg  SignalConfig
		want string // in the error; "" for none
	}{
		{"node", SignalConfig{Listen: listen, Sealer: s, Hubs: hubs, Handler: h}, ""},
		{"hub", SignalConfig{Listen: listen, Sealer: s, Relay: NewRelay(s.PublicKey(), nil, nil), Handler: h}, ""},
		{"no listen address", SignalConfig{Sealer: s, Hubs: hubs, Handler: h}, "Listen"},
		{"no sealer", SignalConfig{Listen: listen, Hubs: hubs, Handler: h}, "Sealer"},
		{"node without hubs", SignalConfig{Listen: listen, Sealer: s, Handler: h}, "Hubs"},
		{"no handler", SignalConfig{Listen: listen, Sealer: s, Hubs: hubs}, "Handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSignalConn(tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("NewSignalConn: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSignalConn error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
