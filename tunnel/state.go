package tunnel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Peer is one WireGuard peer of the desired State.
type Peer struct {
	// Name labels the peer in PeerStatus and logs; WireGuard never sees it.
	Name string
	// PublicKey identifies the peer; unique within a State.
	PublicKey wgtypes.Key
	// Endpoint is the peer's static underlay address. Zero: none configured
	// (WireGuard learns it when the peer talks). It is sent to WireGuard only
	// when it is new or differs from the last applied one, so Apply never
	// undoes WireGuard roaming.
	Endpoint netip.AddrPort
	// AllowedIPs are the peer's overlay /32 and /128 plus its extra routed
	// prefixes. Each gets a kernel route via the device (except /0). A prefix
	// may belong to one peer only.
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is the keepalive interval in whole seconds, at most
	// 65535 s; 0 = off.
	PersistentKeepalive time.Duration
}

// State is the whole desired state of the device. Apply makes the device
// match it: peers not in it are removed, so are addresses and roam routes.
type State struct {
	// PrivateKey of this node; required.
	PrivateKey wgtypes.Key
	// ListenPort is the UDP port; 0 = any (a running port is kept).
	ListenPort int
	// Addresses are this node's overlay addresses (/32, /128) on the device.
	Addresses []netip.Prefix
	// Peers of the device.
	Peers []Peer
}

// PeerStatus is the live state of one peer.
type PeerStatus struct {
	Name                string // from the last applied State; "" for a key not in it
	PublicKey           wgtypes.Key
	Endpoint            netip.AddrPort // current (roaming may have moved it); zero if unknown
	LastHandshake       time.Time      // zero if none yet
	RxBytes, TxBytes    int64
	AllowedIPs          []netip.Prefix
	PersistentKeepalive time.Duration
}

// normalized checks s and returns a copy in canonical form: prefixes of
// AllowedIPs masked, sorted and without duplicates, addresses unmapped.
func (s State) normalized() (State, error) {
	var zero wgtypes.Key
	if s.PrivateKey == zero {
		return State{}, fmt.Errorf("tunnel: state: private key is missing")
	}
	if s.ListenPort < 0 || s.ListenPort > 65535 {
		return State{}, fmt.Errorf("tunnel: state: listen port %d out of range 0..65535", s.ListenPort)
	}
	out := State{PrivateKey: s.PrivateKey, ListenPort: s.ListenPort}
	seenAddr := map[netip.Prefix]bool{}
	for i, a := range s.Addresses {
		if !a.IsValid() {
			return State{}, fmt.Errorf("tunnel: state: addresses[%d]: %q is not a valid address/prefix", i, a)
		}
		a = netip.PrefixFrom(a.Addr().Unmap(), a.Bits())
		if !a.IsValid() {
			return State{}, fmt.Errorf("tunnel: state: addresses[%d]: %s is not a valid IPv4 prefix", i, s.Addresses[i])
		}
		if seenAddr[a] {
			return State{}, fmt.Errorf("tunnel: state: addresses[%d]: %s is listed twice", i, a)
		}
		seenAddr[a] = true
		out.Addresses = append(out.Addresses, a)
	}
	own := s.PrivateKey.PublicKey()
	seenKey := map[wgtypes.Key]int{}
	owner := map[netip.Prefix]int{}
	for i, p := range s.Peers {
		name := fmt.Sprintf("peers[%d] (%q)", i, p.Name)
		if p.PublicKey == zero {
			return State{}, fmt.Errorf("tunnel: state: %s: public key is missing", name)
		}
		if p.PublicKey == own {
			return State{}, fmt.Errorf("tunnel: state: %s: public key %s is this device's own", name, p.PublicKey)
		}
		if j, ok := seenKey[p.PublicKey]; ok {
			return State{}, fmt.Errorf("tunnel: state: %s: public key %s is also peers[%d]'s", name, p.PublicKey, j)
		}
		seenKey[p.PublicKey] = i
		np := Peer{Name: p.Name, PublicKey: p.PublicKey, PersistentKeepalive: p.PersistentKeepalive}
		if p.Endpoint.IsValid() {
			ep := netip.AddrPortFrom(p.Endpoint.Addr().Unmap(), p.Endpoint.Port())
			if ep.Port() == 0 || ep.Addr().IsUnspecified() {
				return State{}, fmt.Errorf("tunnel: state: %s: endpoint %s needs an address and a port", name, p.Endpoint)
			}
			np.Endpoint = ep
		}
		ka := p.PersistentKeepalive
		if ka < 0 || ka > 65535*time.Second || ka%time.Second != 0 {
			return State{}, fmt.Errorf("tunnel: state: %s: persistent keepalive %s: want whole seconds in 0..65535s", name, ka)
		}
		for k, a := range p.AllowedIPs {
			if !a.IsValid() {
				return State{}, fmt.Errorf("tunnel: state: %s: allowed_ips[%d]: %q is not a valid prefix", name, k, a)
			}
			m := netip.PrefixFrom(a.Addr().Unmap(), a.Bits())
			if !m.IsValid() {
				return State{}, fmt.Errorf("tunnel: state: %s: allowed_ips[%d]: %s is not a valid IPv4 prefix", name, k, a)
			}
			m = m.Masked()
			if j, ok := owner[m]; ok && j != i {
				return State{}, fmt.Errorf("tunnel: state: %s: allowed IP %s is also peers[%d]'s (WireGuard gives a prefix to one peer)", name, m, j)
			}
			owner[m] = i
			np.AllowedIPs = append(np.AllowedIPs, m)
		}
		np.AllowedIPs = sortedPrefixes(np.AllowedIPs)
		out.Peers = append(out.Peers, np)
	}
	return out, nil
}

// sortedPrefixes sorts ps in place and drops duplicates.
func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, comparePrefix)
	return slices.Compact(ps)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
