//go:build linux

package mobility

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rtnl is the underlay over rtnetlink in one network namespace: the request
// socket and every subscription socket are opened there, whatever thread
// uses them later.
type rtnl struct {
	ns  netns.NsHandle
	h   *netlink.Handle
	log *slog.Logger
}

var _ underlay = (*rtnl)(nil)

// openUnderlay returns the netlink underlay of the calling thread's network
// namespace.
func openUnderlay(log *slog.Logger) (underlay, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("mobility: get network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("mobility: open netlink: %w", err)
	}
	return &rtnl{ns: ns, h: h, log: log}, nil
}

func (r *rtnl) Close() error {
	r.h.Close()
	return r.ns.Close()
}

// dumpTries bounds the retries of a dump the kernel reports as interrupted
// (the table changed while it was read).
const dumpTries = 5

func (r *rtnl) Read(targets []netip.Addr) (Snapshot, error) {
	var s Snapshot
	links, err := dump(r.h.LinkList)
	if err != nil {
		return s, fmt.Errorf("list links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		s.Links = append(s.Links, Link{
			Name:    a.Name,
			Index:   a.Index,
			Up:      a.Flags&net.FlagUp != 0,
			Carrier: carrier(a),
		})
	}

	addrs, err := dump(func() ([]netlink.Addr, error) { return r.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return s, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		name, ok := names[a.LinkIndex]
		// An address not yet usable (IPv6 duplicate address detection) is
		// left out; the kernel announces it again when it is. One on a
		// link newer than the list is in the next snapshot.
		if !ok || a.IPNet == nil || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		s.Addrs = append(s.Addrs, Addr{Iface: name, Prefix: netip.PrefixFrom(ip.Unmap(), ones)})
	}

	for _, t := range targets {
		p, err := r.path(t, names)
		if err != nil {
			return s, err
		}
		s.Paths = append(s.Paths, p)
	}
	return s, nil
}

// dump calls list until the kernel reports a consistent dump.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	for i := 1; ; i++ {
		v, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == dumpTries {
			return v, err
		}
	}
}

// carrier reports whether a link is operationally up. Links without
// operational state (dummy, some tunnels) report "unknown" and their lower
// layer flag.
func carrier(a *netlink.LinkAttrs) bool {
	switch a.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		return a.RawFlags&unix.IFF_LOWER_UP != 0
	}
	return false
}

// path asks the kernel how it would reach t now, like `ip route get`.
func (r *rtnl) path(t netip.Addr, names map[int]string) (Path, error) {
	routes, err := r.h.RouteGet(t.AsSlice())
	switch {
	case unreachable(err):
		return Path{Target: t}, nil
	case err != nil:
		return Path{}, fmt.Errorf("route to %s: %w", t, err)
	case len(routes) == 0:
		return Path{Target: t}, nil
	}
	rt := routes[0]
	if rt.Type != unix.RTN_UNICAST && rt.Type != unix.RTN_LOCAL {
		return Path{Target: t}, nil
	}
	name, ok := names[rt.LinkIndex]
	if !ok {
		l, err := r.h.LinkByIndex(rt.LinkIndex)
		if err != nil {
			return Path{}, fmt.Errorf("route to %s: link %d: %w", t, rt.LinkIndex, err)
		}
		name = l.Attrs().Name
	}
	p := Path{Target: t, Iface: name, Reachable: true}
	if src, ok := netip.AddrFromSlice(rt.Src); ok {
		p.Src = src.Unmap()
	}
	if gw, ok := netip.AddrFromSlice(rt.Gw); ok {
		p.Gateway = gw.Unmap()
	}
	return p, nil
}

// unreachable reports whether a route lookup failed because the kernel has
// no usable route: none at all, or an unreachable, prohibit or blackhole
// route.
func unreachable(err error) bool {
	return errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) ||
		errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL)
}

// subscription is one set of link, address and route subscriptions: when
// one ends, all end.
type subscription struct {
	log  *slog.Logger
	done chan struct{} // closed to end them
	stop func()
	wg   sync.WaitGroup

	mu    sync.Mutex
	last  [3]error // the last error each subscription reported
	cause error    // why the first one to end ended
	ended bool
}

const (
	subLinks = iota
	subAddrs
	subRoutes
)

func (s *subscription) reported(which int, err error) {
	select {
	case <-s.done: // the sockets are being closed: every receive fails
	default:
		s.log.Debug("netlink", "err", err)
	}
	s.mu.Lock()
	s.last[which] = err
	s.mu.Unlock()
}

// closed records that a subscription's channel was closed and ends the
// others.
func (s *subscription) closed(which int) {
	s.mu.Lock()
	if !s.ended {
		s.ended = true
		s.cause = s.last[which]
		if s.cause == nil {
			s.cause = errors.New("netlink subscription closed")
		}
	}
	s.mu.Unlock()
	s.stop()
}

func (r *rtnl) Subscribe(ctx context.Context, poke func(time.Time)) (<-chan error, error) {
	s := &subscription{log: r.log, done: make(chan struct{})}
	var once sync.Once
	s.stop = func() { once.Do(func() { close(s.done) }) }
	unwatch := context.AfterFunc(ctx, s.stop)
	fail := func(err error) (<-chan error, error) {
		unwatch()
		s.stop()
		s.wg.Wait()
		return nil, err
	}
	debug := r.log.Enabled(ctx, slog.LevelDebug)

	ns := r.ns
	links := make(chan netlink.LinkUpdate, 16)
	err := netlink.LinkSubscribeWithOptions(links, s.done, netlink.LinkSubscribeOptions{
		Namespace:     &ns,
		ErrorCallback: func(err error) { s.reported(subLinks, err) },
	})
	if err != nil {
		return fail(fmt.Errorf("subscribe to links: %w", err))
	}
	s.wg.Go(func() {
		for u := range links {
			poke(time.Now())
			if debug {
				a := u.Attrs()
				r.log.Debug("netlink link", "type", msgType(u.Header.Type), "name", a.Name,
					"flags", a.Flags, "oper", a.OperState)
			}
		}
		s.closed(subLinks)
	})

	addrs := make(chan netlink.AddrUpdate, 16)
	err = netlink.AddrSubscribeWithOptions(addrs, s.done, netlink.AddrSubscribeOptions{
		Namespace:     &ns,
		ErrorCallback: func(err error) { s.reported(subAddrs, err) },
	})
	if err != nil {
		return fail(fmt.Errorf("subscribe to addresses: %w", err))
	}
	s.wg.Go(func() {
		for u := range addrs {
			poke(time.Now())
			if debug {
				r.log.Debug("netlink addr", "new", u.NewAddr, "addr", u.LinkAddress.String(), "index", u.LinkIndex)
			}
		}
		s.closed(subAddrs)
	})

	routes := make(chan netlink.RouteUpdate, 16)
	err = netlink.RouteSubscribeWithOptions(routes, s.done, netlink.RouteSubscribeOptions{
		Namespace:     &ns,
		ErrorCallback: func(err error) { s.reported(subRoutes, err) },
	})
	if err != nil {
		return fail(fmt.Errorf("subscribe to routes: %w", err))
	}
	s.wg.Go(func() {
		for u := range routes {
			poke(time.Now())
			if debug {
				r.log.Debug("netlink route", "type", msgType(u.Type), "route", u.Route.String())
			}
		}
		s.closed(subRoutes)
	})

	ended := make(chan error, 1)
	go func() {
		s.wg.Wait()
		unwatch()
		if ctx.Err() != nil {
			ended <- nil
			return
		}
		s.mu.Lock()
		ended <- s.cause
		s.mu.Unlock()
	}()
	return ended, nil
}

func msgType(t uint16) string {
	switch t {
	case unix.RTM_NEWLINK, unix.RTM_NEWADDR, unix.RTM_NEWROUTE:
		return "new"
	case unix.RTM_DELLINK, unix.RTM_DELADDR, unix.RTM_DELROUTE:
		return "del"
	}
	return fmt.Sprint(t)
}
