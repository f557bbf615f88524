package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// rtnl is linkAPI over a netlink handle whose socket was opened in the
// device's namespace, so requests reach that namespace from any thread.
type rtnl struct {
	h     *netlink.Handle
	table int // of the routes
}

var _ linkAPI = (*rtnl)(nil)

func newRTNL(table int) (*rtnl, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &rtnl{h: h, table: table}, nil
}

func (r *rtnl) link(name string) (netlink.Link, error) {
	l, err := r.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("link %s: %w", name, os.ErrNotExist)
		}
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

func (r *rtnl) Link(name string) (linkState, error) {
	l, err := r.link(name)
	if err != nil {
		return linkState{}, err
	}
	a := l.Attrs()
	return linkState{MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}, nil
}

func (r *rtnl) SetMTU(name string, mtu int) error {
	l, err := r.link(name)
	if err != nil {
		return err
	}
	return r.h.LinkSetMTU(l, mtu)
}

func (r *rtnl) SetUp(name string) error {
	l, err := r.link(name)
	if err != nil {
		return err
	}
	return r.h.LinkSetUp(l)
}

func (r *rtnl) DeleteLink(name string) error {
	l, err := r.link(name)
	if err != nil {
		return err
	}
	return r.h.LinkDel(l)
}

func (r *rtnl) Addrs(name string) ([]netip.Prefix, error) {
	l, err := r.link(name)
	if err != nil {
		return nil, err
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return r.h.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if p, ok := ipNetAddr(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func (r *rtnl) AddAddr(name string, p netip.Prefix) error {
	l, err := r.link(name)
	if err != nil {
		return err
	}
	return r.h.AddrAdd(l, &netlink.Addr{IPNet: addrIPNet(p), Flags: unix.IFA_F_NODAD})
}

func (r *rtnl) DelAddr(name string, p netip.Prefix) error {
	l, err := r.link(name)
	if err != nil {
		return err
	}
	return r.h.AddrDel(l, &netlink.Addr{IPNet: addrIPNet(p)})
}

// route is the roam route to p via link index idx in table.
func route(idx int, p netip.Prefix, table int) *netlink.Route {
	return &netlink.Route{
		LinkIndex: idx,
		Dst:       &ipNets([]netip.Prefix{p})[0],
		Protocol:  RouteProtocol,
		Scope:     netlink.SCOPE_LINK,
		Table:     table,
	}
}

func (r *rtnl) Routes(name string) ([]netip.Prefix, error) {
	l, err := r.link(name)
	if err != nil {
		return nil, err
	}
	filter := &netlink.Route{LinkIndex: l.Attrs().Index, Protocol: RouteProtocol, Table: r.table}
	mask := netlink.RT_FILTER_OIF | netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return r.h.RouteListFiltered(netlink.FAMILY_ALL, filter, mask)
	})
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(routes))
	for _, rt := range routes {
		if rt.Dst == nil {
			continue
		}
		if p, ok := ipNetPrefix(*rt.Dst); ok {
			out = append(out, p)
		}
	}
	return sortedPrefixes(out), nil
}

func (r *rtnl) AddRoute(name string, p netip.Prefix) error {
	l, err := r.link(name)
	if err != nil {
		return err
	}
	err = r.h.RouteAdd(route(l.Attrs().Index, p, r.table))
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("a route to %s that is not roam's exists already: %w", p, err)
	}
	return err
}

func (r *rtnl) DelRoute(name string, p netip.Prefix) error {
	l, err := r.link(name)
	if err != nil {
		return err
	}
	return r.h.RouteDel(route(l.Attrs().Index, p, r.table))
}

func (r *rtnl) Close() error {
	r.h.Close()
	return nil
}

// retryDump repeats a netlink dump the kernel interrupted (the table
// changed while it was read).
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range 5 {
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}

// addrIPNet is an interface address (not masked) as a net.IPNet.
func addrIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
