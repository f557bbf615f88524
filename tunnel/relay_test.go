package tunnel

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

// relayNet is a hub h, a second hub h2, and nodes a and b, with overlay
// addresses; stranger has none.
type relayNet struct {
	h, h2, a, b, stranger wgtypes.Key // private keys
	addr                  map[wgtypes.Key]netip.Addr
	hubs                  map[netip.Addr]bool
}

func newRelayNet(t testing.TB) *relayNet {
	return relayNetOf(newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t))
}

func relayNetOf(h, h2, a, b, stranger wgtypes.Key) *relayNet {
	n := &relayNet{h: h, h2: h2, a: a, b: b, stranger: stranger}
	n.addr = map[wgtypes.Key]netip.Addr{
		n.h.PublicKey():  netip.MustParseAddr("100.64.0.1"),
		n.h2.PublicKey(): netip.MustParseAddr("100.64.0.9"),
		n.a.PublicKey():  netip.MustParseAddr("100.64.0.2"),
		n.b.PublicKey():  netip.MustParseAddr("100.64.0.3"),
	}
	n.hubs = map[netip.Addr]bool{n.addr[n.h.PublicKey()]: true, n.addr[n.h2.PublicKey()]: true}
	return n
}

func (n *relayNet) lookup(k wgtypes.Key) (netip.Addr, bool) { a, ok := n.addr[k]; return a, ok }
func (n *relayNet) isHub(a netip.Addr) bool                 { return n.hubs[a] }
func (n *relayNet) at(priv wgtypes.Key) netip.Addr          { return n.addr[priv.PublicKey()] }

func (n *relayNet) relay() *Relay { return NewRelay(n.h.PublicKey(), n.lookup, n.isHub) }

// envelope seals a Ping from priv to the public key to, with hops.
func (n *relayNet) envelope(t testing.TB, priv, to wgtypes.Key, hops uint32) []byte {
	now := time.Now()
	pkt, err := newTestSealer(priv, &now).Seal(to, &roampb.Signal{Body: &roampb.Signal_Ping{Ping: &roampb.Ping{}}})
	if err != nil {
		t.Fatal(err)
	}
	if hops == 0 {
		return pkt
	}
	env := new(roampb.SignalEnvelope)
	if err := proto.Unmarshal(pkt, env); err != nil {
		t.Fatal(err)
	}
	env.Hops = hops
	return mustMarshal(t, env)
}

func TestRelayRoute(t *testing.T) {
	n := newRelayNet(t)
	hPub, bPub := n.h.PublicKey(), n.b.PublicKey()
	tests := []struct {
		name     string
		pkt      []byte
		src      netip.Addr
		want     RelayAction
		to       netip.Addr // RelayForward
		hops     uint32     // RelayForward: in the forwarded envelope
		wantErr  error
		wantDrop string // counter
	}{
		{name: "a to b", pkt: n.envelope(t, n.a, bPub, 0), src: n.at(n.a), want: RelayForward, to: n.at(n.b), hops: 1},
		{name: "a to b, v4-mapped source", pkt: n.envelope(t, n.a, bPub, 0), src: netip.AddrFrom16(n.at(n.a).As16()), want: RelayForward, to: n.at(n.b), hops: 1},
		{name: "a to b relayed by h2", pkt: n.envelope(t, n.a, bPub, 1), src: n.at(n.h2), want: RelayForward, to: n.at(n.b), hops: 2},
		{name: "a to the hub", pkt: n.envelope(t, n.a, hPub, 0), src: n.at(n.a), want: RelayDeliver},
		{name: "a to the hub, after two relays", pkt: n.envelope(t, n.a, hPub, 2), src: n.at(n.h2), want: RelayDeliver},
		{name: "a to b after two relays", pkt: n.envelope(t, n.a, bPub, 2), src: n.at(n.h2), wantErr: ErrSignalHops, wantDrop: "hops"},
		{name: "a to the hub after three relays", pkt: n.envelope(t, n.a, hPub, 3), src: n.at(n.h2), wantErr: ErrSignalHops, wantDrop: "hops"},
		{name: "b's key sent by a", pkt: n.envelope(t, n.b, hPub, 0), src: n.at(n.a), wantErr: ErrSignalSpoofed, wantDrop: "spoofed"},
		{name: "b's key from an address of no node", pkt: n.envelope(t, n.b, hPub, 0), src: netip.MustParseAddr("100.64.0.77"), wantErr: ErrSignalSpoofed, wantDrop: "spoofed"},
		{name: "unknown sender", pkt: n.envelope(t, n.stranger, bPub, 0), src: netip.MustParseAddr("100.64.0.77"), wantErr: ErrSignalUnknownSender, wantDrop: "unknown_sender"},
		{name: "unknown recipient", pkt: n.envelope(t, n.a, n.stranger.PublicKey(), 0), src: n.at(n.a), wantErr: ErrSignalUnknownRecipient, wantDrop: "unknown_recipient"},
		{name: "not protobuf", pkt: []byte("\xff\xff\xff"), src: n.at(n.a), wantErr: ErrSignalMalformed, wantDrop: "malformed"},
		{name: "too large", pkt: make([]byte, MaxSignalSize+1), src: n.at(n.a), wantErr: ErrSignalTooLarge, wantDrop: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.relay()
			d, err := r.Route(tt.pkt, tt.src)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || d.Action != RelayDrop {
					t.Fatalf("Route = %v, %v; want drop, %v", d.Action, err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "tunnel: signal: ") {
					t.Errorf("error %q does not start with %q", err, "tunnel: signal: ")
				}
				if c := r.Counters(); c["dropped_"+tt.wantDrop] != 1 || c["forwarded"]+c["delivered"] != 0 {
					t.Errorf("counters %v, want dropped_%s 1 only", c, tt.wantDrop)
				}
				return
			}
			if err != nil || d.Action != tt.want {
				t.Fatalf("Route = %v, %v; want %v", d.Action, err, tt.want)
			}
			in := new(roampb.SignalEnvelope)
			if err := proto.Unmarshal(tt.pkt, in); err != nil {
				t.Fatal(err)
			}
			if d.From != wgtypes.Key(in.From) || d.Recipient != wgtypes.Key(in.To) {
				t.Errorf("decision from %s to %s, want %x to %x", d.From, d.Recipient, in.From, in.To)
			}
			if tt.want == RelayDeliver {
				if c := r.Counters(); c["delivered"] != 1 {
					t.Errorf("counters %v, want delivered 1", c)
				}
				return
			}
			if d.To != tt.to {
				t.Errorf("forward to %s, want %s", d.To, tt.to)
			}
			out := new(roampb.SignalEnvelope)
			if err := proto.Unmarshal(d.Packet, out); err != nil {
				t.Fatal(err)
			}
			want := proto.Clone(in).(*roampb.SignalEnvelope)
			want.Hops = tt.hops
			if !proto.Equal(out, want) {
				t.Errorf("forwarded %v, want %v", out, want)
			}
			if c := r.Counters(); c["forwarded"] != 1 {
				t.Errorf("counters %v, want forwarded 1", c)
			}
		})
	}
}

// TestRelayCountersKeys: every counter is there from the start, at zero.
func TestRelayCountersKeys(t *testing.T) {
	c := newRelayNet(t).relay().Counters()
	for _, k := range []string{"forwarded", "delivered", "dropped_too_large", "dropped_malformed", "dropped_hops",
		"dropped_spoofed", "dropped_unknown_sender", "dropped_unknown_recipient"} {
		if v, ok := c[k]; !ok || v != 0 {
			t.Errorf("counter %s = %d, %v; want 0, present", k, v, ok)
		}
	}
}
