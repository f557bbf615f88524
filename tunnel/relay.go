package tunnel

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/proto"
)

// RelayAction is what a Relay decided to do with a signalling datagram.
type RelayAction int

const (
	// RelayDrop: the datagram goes no further; Route's error says why.
	RelayDrop RelayAction = iota
	// RelayForward: send Decision.Packet to Decision.To.
	RelayForward
	// RelayDeliver: the datagram is for this hub itself; open it.
	RelayDeliver
)

func (a RelayAction) String() string {
	switch a {
	case RelayDrop:
		return "drop"
	case RelayForward:
		return "forward"
	case RelayDeliver:
		return "deliver"
	}
	return fmt.Sprintf("RelayAction(%d)", int(a))
}

// Decision is the outcome of Relay.Route.
type Decision struct {
	Action RelayAction
	// From and Recipient are the envelope's keys, as it claims them; zero
	// if it did not parse.
	From, Recipient wgtypes.Key
	// To is the recipient's overlay address (RelayForward).
	To netip.Addr
	// Packet is the envelope to send to To, its hops counted up
	// (RelayForward).
	Packet []byte
}

// Relay decides what a hub does with the signalling datagrams it receives:
// forward them to their recipient, deliver them to the hub itself, or drop
// them. It reads the envelope only, never the box, and counts its
// decisions. It is safe for concurrent use.
type Relay struct {
	self   wgtypes.Key
	lookup func(wgtypes.Key) (netip.Addr, bool)
	isHub  func(netip.Addr) bool

	counts map[string]*atomic.Uint64 // fixed keys, see relayCounters
}

// NewRelay returns the Relay of the hub whose public key is self. lookup
// gives a node's overlay address by public key (false for a key the hub does
// not know). isHub tells whether an overlay address is a hub's, whose
// datagrams may carry any sender's key (it relays them); nil means there are
// no other hubs. Both are called on every Route and must be safe for
// concurrent use.
func NewRelay(self wgtypes.Key, lookup func(wgtypes.Key) (netip.Addr, bool), isHub func(netip.Addr) bool) *Relay {
	if lookup == nil {
		lookup = func(wgtypes.Key) (netip.Addr, bool) { return netip.Addr{}, false }
	}
	if isHub == nil {
		isHub = func(netip.Addr) bool { return false }
	}
	r := &Relay{self: self, lookup: lookup, isHub: isHub, counts: map[string]*atomic.Uint64{}}
	for _, name := range relayCounters() {
		r.counts[name] = new(atomic.Uint64)
	}
	return r
}

func relayCounters() []string {
	names := []string{"forwarded", "delivered", "dropped_other"}
	for _, d := range signalDrops {
		names = append(names, "dropped_"+d.name)
	}
	return names
}

// Lookup is the overlay address of the node whose key is k, as the Relay's
// lookup gives it.
func (r *Relay) Lookup(k wgtypes.Key) (netip.Addr, bool) { return r.lookup(k) }

// Route decides what to do with pkt, a datagram that arrived from the
// overlay address src. It drops, with an error wrapping one of the
// ErrSignal sentinels: a datagram over MaxSignalSize, a malformed envelope,
// one that has crossed more than MaxSignalHops relays or would by being
// forwarded, one whose sender key is not the node at src (unless src is a
// hub, which relays for others), and one for a recipient it does not know.
// An envelope for the hub itself is delivered; any other is forwarded to the
// recipient's overlay address with its hops counted up.
func (r *Relay) Route(pkt []byte, src netip.Addr) (Decision, error) {
	d, err := r.route(pkt, src.Unmap())
	switch {
	case err != nil:
		d = Decision{Action: RelayDrop, From: d.From, Recipient: d.Recipient}
		r.counts["dropped_"+signalDropName(err)].Add(1)
	case d.Action == RelayForward:
		r.counts["forwarded"].Add(1)
	case d.Action == RelayDeliver:
		r.counts["delivered"].Add(1)
	}
	return d, err
}

func (r *Relay) route(pkt []byte, src netip.Addr) (Decision, error) {
	env, err := parseSignalEnvelope(pkt)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{From: wgtypes.Key(env.From), Recipient: wgtypes.Key(env.To)}
	if env.Hops > MaxSignalHops {
		return d, fmt.Errorf("tunnel: signal: relay: from %s: crossed %d relays, at most %d: %w",
			d.From, env.Hops, MaxSignalHops, ErrSignalHops)
	}
	if addr, ok := r.lookup(d.From); (!ok || addr != src) && !r.isHub(src) {
		if !ok {
			return d, fmt.Errorf("tunnel: signal: relay: from %s (sent by %s): %w", d.From, src, ErrSignalUnknownSender)
		}
		return d, fmt.Errorf("tunnel: signal: relay: from %s: sent by %s, but the key's overlay address is %s: %w",
			d.From, src, addr, ErrSignalSpoofed)
	}
	if d.Recipient == r.self {
		d.Action = RelayDeliver
		return d, nil
	}
	to, ok := r.lookup(d.Recipient)
	if !ok {
		return d, fmt.Errorf("tunnel: signal: relay: from %s: to %s: %w", d.From, d.Recipient, ErrSignalUnknownRecipient)
	}
	if env.Hops+1 > MaxSignalHops {
		return d, fmt.Errorf("tunnel: signal: relay: from %s: to %s: crossed %d relays, forwarding makes more than %d: %w",
			d.From, d.Recipient, env.Hops, MaxSignalHops, ErrSignalHops)
	}
	env.Hops++
	out, err := proto.Marshal(env)
	if err != nil {
		return d, fmt.Errorf("tunnel: signal: relay: from %s: to %s: %w: %w", d.From, d.Recipient, err, ErrSignalMalformed)
	}
	if len(out) > MaxSignalSize {
		return d, fmt.Errorf("tunnel: signal: relay: from %s: to %s: %d bytes with hops, more than %d: %w",
			d.From, d.Recipient, len(out), MaxSignalSize, ErrSignalTooLarge)
	}
	d.Action, d.To, d.Packet = RelayForward, to, out
	return d, nil
}

// Counters returns how many datagrams Route forwarded, delivered and
// dropped, by reason: "forwarded", "delivered", "dropped_<reason>" (reasons:
// too_large, malformed, hops, unknown_sender, spoofed, unknown_recipient,
// ...). Every key is always present.
func (r *Relay) Counters() map[string]uint64 {
	out := make(map[string]uint64, len(r.counts))
	for k, v := range r.counts {
		out[k] = v.Load()
	}
	return out
}
