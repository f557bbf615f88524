package tunnel

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

// fuzzKey is a fixed private key, so that the sealed datagrams of the seed
// corpus (testdata/fuzz) stay valid: key 1 sends, key 2 receives.
func fuzzKey(b byte) wgtypes.Key {
	var k wgtypes.Key
	for i := range k {
		k[i] = b
	}
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k
}

// fuzzSignal builds a Signal of one of the body kinds from the fuzzer's
// values; it may well be out of bounds.
func fuzzSignal(kind uint8, session uint64, ufrag, pwd, cand string, n uint8) *roampb.Signal {
	cands := make([]string, int(n)%(maxCandidates+3))
	for i := range cands {
		cands[i] = cand
	}
	m := &roampb.Signal{Session: session}
	switch kind % 8 {
	case 0:
		m.Body = &roampb.Signal_Offer{Offer: &roampb.IceOffer{Ufrag: ufrag, Pwd: pwd, Candidates: cands}}
	case 1:
		m.Body = &roampb.Signal_Answer{Answer: &roampb.IceAnswer{Ufrag: ufrag, Pwd: pwd, Candidates: cands}}
	case 2:
		m.Body = &roampb.Signal_Candidates{Candidates: &roampb.IceCandidates{Candidates: cands, Done: n&1 == 1}}
	case 3:
		m.Body = &roampb.Signal_Restart{Restart: &roampb.IceRestart{Reason: cand}}
	case 4:
		key := []byte(pwd) // the right length when pwd is 32 bytes or more
		if len(key) > 32 {
			key = key[:32]
		}
		members := make([]*roampb.Member, int(n)%8)
		for i := range members {
			members[i] = &roampb.Member{Name: ufrag, PublicKey: key,
				Addresses: cands[:min(len(cands), 2)], Hub: i == 0, Endpoints: []string{cand}}
		}
		m.Body = &roampb.Signal_Directory{Directory: &roampb.Directory{Members: members}}
	case 5:
		m.Body = &roampb.Signal_DirectoryRequest{DirectoryRequest: &roampb.DirectoryRequest{}}
	case 6:
		m.Body = &roampb.Signal_Ping{Ping: &roampb.Ping{}}
	}
	return m
}

// FuzzSignalOpen checks that Open never panics on any datagram and fails only
// with one of the drop reasons, and that any Signal Seal accepts opens to an
// equal one. Seeds: testdata/fuzz/FuzzSignalOpen (datagrams sealed by key 1
// for key 2 at signalEpoch, and broken ones).
func FuzzSignalOpen(f *testing.F) {
	sender, recipient := fuzzKey(1), fuzzKey(2)
	clock := signalEpoch
	open := newTestSealer(recipient, &clock, sender)
	rtSend, rtOpen := newTestSealer(sender, &clock), newTestSealer(recipient, &clock, sender)
	f.Add([]byte{}, uint8(0), uint64(1), "abcd", strings.Repeat("p", 22), "1 1 udp 1 192.0.2.1 1 typ host", uint8(2))
	f.Fuzz(func(t *testing.T, pkt []byte, kind uint8, session uint64, ufrag, pwd, cand string, n uint8) {
		from, m, err := open.Open(pkt)
		if err != nil {
			if signalDropName(err) == "other" || from != (wgtypes.Key{}) || m != nil {
				t.Fatalf("Open = %s, %v, %v: want the zero key, nil and a drop reason", from, m, err)
			}
		} else if from != sender.PublicKey() || checkSignal(m) != nil || m.Seq == 0 {
			t.Fatalf("Open accepted %v from %s", m, from)
		}

		sig := fuzzSignal(kind, session, ufrag, pwd, cand, n)
		sealed, err := rtSend.Seal(recipient.PublicKey(), sig)
		if err != nil {
			if !errors.Is(err, ErrSignalMalformed) && !errors.Is(err, ErrSignalTooLarge) {
				t.Fatalf("Seal: %v: want malformed or too large", err)
			}
			return
		}
		if len(sealed) > MaxSignalSize-signalHopsRoom {
			t.Fatalf("Seal gave %d bytes", len(sealed))
		}
		from, got, err := rtOpen.Open(sealed)
		if err != nil {
			t.Fatalf("Open of what Seal gave: %v (signal %v)", err, sig)
		}
		if from != sender.PublicKey() || !proto.Equal(got, sig) {
			t.Fatalf("Open = %v from %s, want %v from %s", got, from, sig, sender.PublicKey())
		}
	})
}

// FuzzRelayRoute checks that Route never panics, leaves its input alone,
// drops only with a drop reason, delivers only what is for the hub, and
// forwards an envelope equal to its input but for one more hop, to the
// recipient's address. Seeds: testdata/fuzz/FuzzRelayRoute (envelopes
// between the fixed keys 1 to 5: h, h2, a, b, stranger).
func FuzzRelayRoute(f *testing.F) {
	n := relayNetOf(fuzzKey(1), fuzzKey(2), fuzzKey(3), fuzzKey(4), fuzzKey(5))
	r := n.relay()
	f.Add(n.envelope(f, n.a, n.b.PublicKey(), 0), uint8(2))
	f.Fuzz(func(t *testing.T, pkt []byte, srcLast uint8) {
		src := netip.AddrFrom4([4]byte{100, 64, 0, srcLast})
		in := bytes.Clone(pkt)
		d, err := r.Route(pkt, src)
		if !bytes.Equal(in, pkt) {
			t.Fatal("Route changed its input")
		}
		switch d.Action {
		case RelayDrop:
			if err == nil || signalDropName(err) == "other" {
				t.Fatalf("drop with error %v: want a drop reason", err)
			}
			return
		case RelayDeliver:
			if err != nil || d.Recipient != n.h.PublicKey() {
				t.Fatalf("deliver to %s, error %v", d.Recipient, err)
			}
			return
		case RelayForward:
		default:
			t.Fatalf("action %v", d.Action)
		}
		if err != nil {
			t.Fatalf("forward with error %v", err)
		}
		if to, ok := n.lookup(d.Recipient); !ok || to != d.To || d.Recipient == n.h.PublicKey() {
			t.Fatalf("forward for %s to %s", d.Recipient, d.To)
		}
		if from, ok := n.lookup(d.From); !n.isHub(src) && (!ok || from != src) {
			t.Fatalf("forwarded from %s, sent by %s", d.From, src)
		}
		if len(d.Packet) > MaxSignalSize {
			t.Fatalf("forwarded %d bytes", len(d.Packet))
		}
		before, after := new(roampb.SignalEnvelope), new(roampb.SignalEnvelope)
		if err := proto.Unmarshal(pkt, before); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(d.Packet, after); err != nil {
			t.Fatalf("forwarded envelope: %v", err)
		}
		if after.Hops != before.Hops+1 || after.Hops > MaxSignalHops {
			t.Fatalf("forwarded with hops %d, had %d", after.Hops, before.Hops)
		}
		before.Hops = after.Hops
		if !proto.Equal(before, after) {
			t.Fatalf("forwarded %v, want %v", after, before)
		}
	})
}
