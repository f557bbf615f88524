package fib

import (
	"errors"
	"fmt"
	"net/netip"
)

// Protocol marks the kernel routes roam installs (rtm_protocol); it equals
// tunnel.RouteProtocol, so `ip route show proto 114` lists every route roam
// installed, on the tunnel device and via the underlay. fib does not import
// package tunnel for it (a test checks they agree).
const Protocol = 114

// Route is a route to Prefix via Gateway, a router on a connected underlay
// subnet. Gateway has Prefix's family (an IPv4 prefix via an IPv6 next hop is
// not supported); an IPv6 gateway must not be link-local, which would need a
// device the kernel cannot choose.
type Route struct {
	Prefix  netip.Prefix
	Gateway netip.Addr
}

func (r Route) String() string {
	return fmt.Sprintf("%s via %s", r.Prefix, r.Gateway)
}

// ErrUnreachable is wrapped by the error of a route whose gateway the kernel
// cannot reach: no connected subnet holds it.
var ErrUnreachable = errors.New("gateway not on a connected subnet")

// RouteError is the failure of one route in a Sync; the others are installed
// regardless. For a route that could not be added or changed, the kernel's
// route for Prefix (if any) is left as it was; the next Sync tries again.
type RouteError struct {
	Op    string // "add", "change", "delete", or "check" (refused before reaching the kernel)
	Route Route
	Err   error
}

func (e *RouteError) Error() string {
	if !e.Route.Gateway.IsValid() {
		return fmt.Sprintf("fib: %s %s: %v", e.Op, e.Route.Prefix, e.Err)
	}
	return fmt.Sprintf("fib: %s %s: %v", e.Op, e.Route, e.Err)
}

func (e *RouteError) Unwrap() error { return e.Err }

// check returns why r cannot be installed, or nil.
func check(r Route) error {
	p, gw := r.Prefix, r.Gateway
	switch {
	case !p.IsValid():
		return errors.New("invalid prefix")
	case p.Addr().Is4In6():
		return errors.New("IPv4-mapped IPv6 prefix: use the IPv4 prefix")
	case p != p.Masked():
		return fmt.Errorf("host bits set: want %s", p.Masked())
	case !gw.IsValid():
		return errors.New("no gateway")
	case gw.Is4In6():
		return errors.New("IPv4-mapped IPv6 gateway: use the IPv4 address")
	case gw.Is4() != p.Addr().Is4():
		return errors.New("gateway and prefix are of different families")
	case gw.Zone() != "":
		return errors.New("gateway has a zone")
	case gw.IsUnspecified() || gw.IsMulticast() || gw == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return errors.New("gateway is not a unicast address")
	case gw.Is6() && gw.IsLinkLocalUnicast():
		return errors.New("link-local gateway needs a device: not supported")
	}
	return nil
}
