package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Route is one path in the speaker's RIB, as plain values.
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	// ASPath lists the ASNs of the path, nearest first; empty for originated
	// routes.
	ASPath []uint32
	// LocalPref and MED are 0 when the attribute is absent.
	LocalPref uint32
	MED       uint32
	// Best is set on the path GoBGP selected for the prefix.
	Best bool
	// Stale is set on a path kept from a neighbour that is restarting
	// gracefully (RFC 4724): it is used until the neighbour refreshes it or
	// its restart time runs out. GoBGP does not publish a path turning stale
	// as a best-path change, so Updates carry no event for it.
	Stale bool
	// From is the neighbour the path was learned from; invalid when
	// Originated.
	From       netip.Addr
	Originated bool
}

// RouteEvent is a best-path change: the new best path for Route.Prefix, or,
// with Withdrawn set, the prefix has no best path any more.
type RouteEvent struct {
	Route     Route
	Withdrawn bool
}

// newPath builds the GoBGP path originating prefix with next hop nh. IPv6
// prefixes are carried in MP_REACH_NLRI; the next hop's family must match.
func newPath(prefix netip.Prefix, nh netip.Addr) (*api.Path, error) {
	prefix = prefix.Masked()
	if !prefix.IsValid() {
		return nil, fmt.Errorf("invalid prefix")
	}
	if !nh.IsValid() || nh.Is4() != prefix.Addr().Is4() || nh.Is4In6() {
		return nil, fmt.Errorf("next hop %q is not an address of the prefix's family", nh)
	}
	origin := bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)
	var nlri bgppkt.AddrPrefixInterface
	var attrs []bgppkt.PathAttributeInterface
	if prefix.Addr().Is4() {
		nlri = bgppkt.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		attrs = []bgppkt.PathAttributeInterface{origin, bgppkt.NewPathAttributeNextHop(nh.String())}
	} else {
		nlri = bgppkt.NewIPv6AddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		attrs = []bgppkt.PathAttributeInterface{origin,
			bgppkt.NewPathAttributeMpReachNLRI(nh.String(), []bgppkt.AddrPrefixInterface{nlri})}
	}
	return apiutil.NewPath(nlri, false, attrs, time.Now())
}

func addrFromIP(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// routeFromPath translates a GoBGP path into a Route.
func routeFromPath(p *api.Path) (Route, error) {
	prefix, err := pathPrefix(p)
	if err != nil {
		return Route{}, err
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return Route{}, fmt.Errorf("bgp: decode attributes of %s: %w", prefix, err)
	}
	r := Route{Prefix: prefix, Best: p.Best, Stale: p.Stale}
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgppkt.PathAttributeNextHop:
			r.NextHop = addrFromIP(a.Value)
		case *bgppkt.PathAttributeMpReachNLRI:
			r.NextHop = addrFromIP(a.Nexthop)
		case *bgppkt.PathAttributeAsPath:
			for _, seg := range a.Value {
				r.ASPath = append(r.ASPath, seg.GetAS()...)
			}
		case *bgppkt.PathAttributeLocalPref:
			r.LocalPref = a.Value
		case *bgppkt.PathAttributeMultiExitDisc:
			r.MED = a.Value
		}
	}
	if from, err := netip.ParseAddr(p.NeighborIp); err == nil && !from.IsUnspecified() {
		r.From = from.Unmap()
	} else {
		r.Originated = true
	}
	return r, nil
}
