package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// rejectAfter is WireGuard's Reject-After-Time: a peer whose last handshake
// is younger than this has a working session at its current endpoint.
const rejectAfter = 180 * time.Second

// wgChanges returns the WireGuard configuration that turns live into want,
// and one line per change for the log; no lines means nothing to send. last
// is the State applied before (nil: none yet). Only changes are sent:
// ReplacePeers is never set, peers that are gone are removed one by one,
// allowed IPs are replaced only when they differ, and an endpoint is sent
// only when setEndpoint says so.
func wgChanges(live *wgtypes.Device, last *State, want State, now time.Time) (wgtypes.Config, []string) {
	var cfg wgtypes.Config
	var log []string
	if live.PrivateKey != want.PrivateKey {
		k := want.PrivateKey
		cfg.PrivateKey = &k
		was := "(none)"
		if live.PrivateKey != (wgtypes.Key{}) {
			was = live.PublicKey.String()
		}
		log = append(log, fmt.Sprintf("public key %s -> %s", was, k.PublicKey()))
	}
	if want.ListenPort != 0 && live.ListenPort != want.ListenPort {
		p := want.ListenPort
		cfg.ListenPort = &p
		log = append(log, fmt.Sprintf("listen port %d -> %d", live.ListenPort, p))
	}

	livePeers := make(map[wgtypes.Key]*wgtypes.Peer, len(live.Peers))
	for i := range live.Peers {
		livePeers[live.Peers[i].PublicKey] = &live.Peers[i]
	}
	lastPeers := map[wgtypes.Key]*Peer{}
	if last != nil {
		for i := range last.Peers {
			lastPeers[last.Peers[i].PublicKey] = &last.Peers[i]
		}
	}
	wanted := make(map[wgtypes.Key]bool, len(want.Peers))
	for _, p := range want.Peers {
		wanted[p.PublicKey] = true
	}

	// Removals first, in key order, so the config is deterministic.
	var gone []wgtypes.Key
	for k := range livePeers {
		if !wanted[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, compareKey)
	for _, k := range gone {
		cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: k, Remove: true})
		name := ""
		if lp := lastPeers[k]; lp != nil {
			name = lp.Name
		}
		log = append(log, fmt.Sprintf("peer %q %s removed", name, k))
	}

	for _, p := range want.Peers {
		lp := livePeers[p.PublicKey]
		pc := wgtypes.PeerConfig{PublicKey: p.PublicKey}
		if lp == nil {
			pc.ReplaceAllowedIPs = true
			pc.AllowedIPs = ipNets(p.AllowedIPs)
			if p.PersistentKeepalive != 0 {
				ka := p.PersistentKeepalive
				pc.PersistentKeepaliveInterval = &ka
			}
			if p.Endpoint.IsValid() {
				pc.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
			}
			cfg.Peers = append(cfg.Peers, pc)
			log = append(log, fmt.Sprintf("peer %q %s added (endpoint %s, allowed IPs %v)", p.Name, p.PublicKey, addrPortOrNone(p.Endpoint), p.AllowedIPs))
			continue
		}
		changed := false
		if have := livePrefixes(lp.AllowedIPs); !slices.Equal(have, p.AllowedIPs) {
			pc.ReplaceAllowedIPs = true
			pc.AllowedIPs = ipNets(p.AllowedIPs)
			changed = true
			log = append(log, fmt.Sprintf("peer %q allowed IPs %v -> %v", p.Name, have, p.AllowedIPs))
		}
		if lp.PersistentKeepaliveInterval != p.PersistentKeepalive {
			ka := p.PersistentKeepalive
			pc.PersistentKeepaliveInterval = &ka
			changed = true
			log = append(log, fmt.Sprintf("peer %q persistent keepalive %s -> %s", p.Name, lp.PersistentKeepaliveInterval, ka))
		}
		if setEndpoint(p, lastPeers[p.PublicKey], lp, now) {
			pc.Endpoint = net.UDPAddrFromAddrPort(p.Endpoint)
			changed = true
			log = append(log, fmt.Sprintf("peer %q endpoint %s -> %s", p.Name, addrPortOrNone(udpAddrPort(lp.Endpoint)), p.Endpoint))
		}
		if changed {
			cfg.Peers = append(cfg.Peers, pc)
		}
	}
	return cfg, log
}

// setEndpoint reports whether want's static endpoint must be sent to
// WireGuard for a peer that exists on the device (live). WireGuard roaming
// moves a peer's endpoint to wherever its authenticated packets come from,
// and Apply must not undo that, so the endpoint is sent only when:
//   - the desired endpoint differs from the one applied last time (last), or
//   - the peer was not in the last applied State (the device was kept from
//     an earlier run) and its live endpoint differs, unless that live
//     endpoint has proven itself with a handshake in the last 180 s.
func setEndpoint(want Peer, last *Peer, live *wgtypes.Peer, now time.Time) bool {
	if !want.Endpoint.IsValid() {
		return false // nothing configured: WireGuard learns it
	}
	if last != nil {
		return want.Endpoint != last.Endpoint
	}
	cur := udpAddrPort(live.Endpoint)
	if cur == want.Endpoint {
		return false
	}
	if cur.IsValid() && !live.LastHandshakeTime.IsZero() && live.LastHandshakeTime.Unix() > 0 &&
		now.Sub(live.LastHandshakeTime) < rejectAfter {
		return false
	}
	return true
}

// addrChanges returns the addresses to add to and delete from a link that
// has live so that it has want. Link-local addresses (the kernel's IPv6
// fe80::/10 one) are never deleted.
func addrChanges(live, want []netip.Prefix) (add, del []netip.Prefix) {
	for _, w := range want {
		if !slices.Contains(live, w) {
			add = append(add, w)
		}
	}
	for _, l := range live {
		if l.Addr().IsLinkLocalUnicast() {
			continue
		}
		if !slices.Contains(want, l) {
			del = append(del, l)
		}
	}
	return add, del
}

// wantRoutes returns the kernel routes the peers need via the device: each
// allowed IP once, except /0 (a default route into the tunnel would carry
// the tunnel's own underlay packets).
func wantRoutes(peers []Peer) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range peers {
		for _, a := range p.AllowedIPs {
			if a.Bits() > 0 {
				out = append(out, a)
			}
		}
	}
	return sortedPrefixes(out)
}

// routeChanges returns the routes to add and delete so that live becomes want.
func routeChanges(live, want []netip.Prefix) (add, del []netip.Prefix) {
	for _, w := range want {
		if !slices.Contains(live, w) {
			add = append(add, w)
		}
	}
	for _, l := range live {
		if !slices.Contains(want, l) {
			del = append(del, l)
		}
	}
	return add, del
}

// livePrefixes returns WireGuard's allowed IPs in canonical form.
func livePrefixes(ns []net.IPNet) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ns))
	for _, n := range ns {
		if p, ok := ipNetPrefix(n); ok {
			out = append(out, p)
		}
	}
	return sortedPrefixes(out)
}

func ipNetPrefix(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	a = a.Unmap()
	if bits == 0 || (a.Is4() && bits != 32 && bits != 128) {
		return netip.Prefix{}, false
	}
	if a.Is4() && bits == 128 {
		ones -= 96
	}
	p := netip.PrefixFrom(a, ones)
	return p.Masked(), p.IsValid()
}

func ipNets(ps []netip.Prefix) []net.IPNet {
	out := make([]net.IPNet, 0, len(ps))
	for _, p := range ps {
		out = append(out, net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		})
	}
	return out
}

func udpAddrPort(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func compareKey(a, b wgtypes.Key) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

func addrPortOrNone(a netip.AddrPort) string {
	if !a.IsValid() {
		return "(none)"
	}
	return a.String()
}

// ipNetAddr is an interface address (not masked) as a prefix.
func ipNetAddr(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 128 && a.Is4() {
		ones -= 96
	}
	p := netip.PrefixFrom(a, ones)
	return p, p.IsValid()
}
