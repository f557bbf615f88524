package fib

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// New validates cfg and opens its netlink sockets in the calling thread's
// network namespace (lock the thread and enter the namespace first to use
// another one); every later call acts there, from any thread. It changes
// nothing in the kernel: List shows what an earlier run left, and the first
// Sync takes it over.
func New(cfg Config, log *slog.Logger) (*FIB, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	k, err := newRTNL()
	if err != nil {
		return nil, fmt.Errorf("fib: %w", err)
	}
	return newFIB(cfg, log, k), nil
}

// rtnl is kernel over two rtnetlink sockets: the netlink package's handle
// reads (the dump, device names), a writer sends changes in batches.
type rtnl struct {
	h *netlink.Handle
	w *writer
}

var _ kernel = (*rtnl)(nil)

func newRTNL() (*rtnl, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	// With strict checking the kernel filters the dump by table and
	// protocol instead of sending every route; without it (kernels before
	// 4.20) the netlink package filters them here.
	_ = h.SetStrictCheck(true)
	w, err := newWriter()
	if err != nil {
		h.Close()
		return nil, err
	}
	return &rtnl{h: h, w: w}, nil
}

func (r *rtnl) Routes(table int) ([]kroute, error) {
	var out []kroute
	var links []int // link index of each of out
	// One dump per family: an AF_UNSPEC dump also asks every other family
	// (MPLS, multicast), some of which refuse the table filter.
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		n := len(out)
		var err error
		// Repeat a dump the kernel interrupted (the table changed while
		// it was read). Routes are converted as they arrive: collecting
		// netlink.Route values first costs more than the dump itself.
		for range 5 {
			out, links = out[:n], links[:n]
			filter := &netlink.Route{Table: table, Protocol: Protocol}
			err = r.h.RouteListFilteredIter(family, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL,
				func(rt netlink.Route) bool {
					if kr, ok := fromNetlink(rt); ok {
						out = append(out, kr)
						links = append(links, rt.LinkIndex)
					}
					return true
				})
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if errors.Is(err, unix.ENOENT) {
			// The kernel creates a table with its first route: none yet.
			out, links, err = out[:n], links[:n], nil
		}
		if err != nil {
			return nil, fmt.Errorf("dump routes: %w", err)
		}
	}
	// Device names, one request per device (not allowed inside the dump's
	// callback). A device that vanished since the dump leaves "": not owned.
	names := map[int]string{}
	for i := range out {
		idx := links[i]
		if idx <= 0 || out[i].Multipath {
			continue
		}
		name, ok := names[idx]
		if !ok {
			if l, err := r.h.LinkByIndex(idx); err == nil {
				name = l.Attrs().Name
			}
			names[idx] = name
		}
		out[i].Dev = name
	}
	return out, nil
}

// fromNetlink converts a dumped route; false for one that is not IP.
func fromNetlink(rt netlink.Route) (kroute, bool) {
	if rt.Dst == nil {
		return kroute{}, false
	}
	a, ok := netip.AddrFromSlice(rt.Dst.IP)
	if !ok {
		return kroute{}, false
	}
	ones, bits := rt.Dst.Mask.Size()
	if bits == 32 {
		a = a.Unmap() // the netlink package gives 0.0.0.0/0 a 16-byte address
	}
	if bits != a.BitLen() {
		return kroute{}, false
	}
	kr := kroute{
		Prefix:    netip.PrefixFrom(a, ones),
		Multipath: len(rt.MultiPath) > 0,
		Unicast:   rt.Type == unix.RTN_UNICAST,
		Metric:    rt.Priority,
		TOS:       rt.Tos,
	}
	if gw, ok := netip.AddrFromSlice(rt.Gw); ok && !kr.Multipath {
		kr.Gateway = gw
	}
	return kr, true
}

func (r *rtnl) Apply(table int, ops []op) []error {
	errs, oifs := r.w.apply(table, ops)
	names := map[int]string{}
	for i := range ops {
		if errs[i] != nil || ops[i].Kind == opDelete || oifs[i] <= 0 {
			continue
		}
		name, ok := names[oifs[i]]
		if !ok {
			if l, err := r.h.LinkByIndex(oifs[i]); err == nil {
				name = l.Attrs().Name
			}
			names[oifs[i]] = name
		}
		ops[i].Route.Dev = name
	}
	return errs
}

func (r *rtnl) Close() error {
	r.h.Close()
	return r.w.Close()
}
