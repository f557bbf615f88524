package bgp

import "net/netip"

// Rules of the import policy, as named in the "bgp: rejected route" log line.
const (
	ruleOwn      = "own"      // a prefix this node originates
	ruleDefault  = "default"  // 0.0.0.0/0 or ::/0 without Config.AcceptDefault
	ruleMartian  = "martian"  // inside a range that is never routed
	ruleOverlay  = "overlay"  // inside Config.OverlayPool: routed by the tunnel
	ruleInternal = "internal" // inside Config.InternalPrefixes, from an external neighbour
)

// martians are ranges no neighbour may announce, matched "or longer": the
// range itself and every prefix inside it.
var martians = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// importRules is the import policy as a value. rejectReason mirrors the
// GoBGP policy built by importPolicy statement for statement, so that a
// rejection can be logged with its rule (GoBGP itself does not log policy
// rejects).
type importRules struct {
	acceptDefault bool
	overlay       []netip.Prefix
	internal      []netip.Prefix
}

func newImportRules(c *Config) importRules {
	return importRules{acceptDefault: c.AcceptDefault, overlay: c.OverlayPool, internal: c.InternalPrefixes}
}

// orLonger reports whether p is r or a more specific prefix inside r.
func orLonger(p, r netip.Prefix) bool {
	return p.Addr().Is4() == r.Addr().Is4() && p.Bits() >= r.Bits() && r.Contains(p.Addr())
}

func inAny(p netip.Prefix, rs []netip.Prefix) bool {
	for _, r := range rs {
		if orLonger(p, r) {
			return true
		}
	}
	return false
}

// rejectReason returns the rule under which the import policy rejects prefix
// p learned from a neighbour of kind k, or "" if it is accepted. own says
// whether this node originates p itself. The order is the policy's order.
func (r importRules) rejectReason(p netip.Prefix, k NeighborKind, own bool) string {
	switch {
	case own:
		return ruleOwn
	case p.Bits() == 0 && !r.acceptDefault:
		return ruleDefault
	case inAny(p, martians):
		return ruleMartian
	case inAny(p, r.overlay):
		return ruleOverlay
	case k == KindExternal && inAny(p, r.internal):
		return ruleInternal
	}
	return ""
}
