package fib

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
)

// fakeKernel is an in-memory routing table set with the kernel's semantics
// as fib relies on them: a route's key is (table, prefix, TOS, metric),
// whatever its protocol; an add of an existing key fails with EEXIST, a
// replace takes over the key whoever owned it, a delete must match protocol
// and gateway too (ESRCH otherwise); a gateway must be on a connected subnet
// (ENETUNREACH for IPv4, EHOSTUNREACH for IPv6), which gives the device.
type fakeKernel struct {
	routes    []fakeRoute
	connected map[netip.Prefix]string // subnet -> device
	dumpErr   error
	fail      map[netip.Prefix]error // injected errors for ops on a prefix
	applied   []string               // every op, "add 10.0.0.0/8 via 192.0.2.1"
	dumps     int                    // calls of Routes
	closed    bool
}

type fakeRoute struct {
	table int
	proto int
	kroute
}

func (r fakeRoute) String() string {
	s := r.Prefix.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	s += fmt.Sprintf(" proto %d table %d", r.proto, r.table)
	if r.Metric != defaultMetric(r.Prefix) {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	if !r.Unicast {
		s += " blackhole"
	}
	if r.Multipath {
		s += " multipath"
	}
	return s
}

var _ kernel = (*fakeKernel)(nil)

// newFakeKernel has ul0 (198.51.100.0/24, 2001:db8:1::/64), ul1
// (203.0.113.0/24, 2001:db8:2::/64) and roam0 (10.99.64.0/24) connected.
func newFakeKernel(routes ...fakeRoute) *fakeKernel {
	return &fakeKernel{
		routes: routes,
		connected: map[netip.Prefix]string{
			netip.MustParsePrefix("198.51.100.0/24"): "ul0",
			netip.MustParsePrefix("2001:db8:1::/64"): "ul0",
			netip.MustParsePrefix("203.0.113.0/24"):  "ul1",
			netip.MustParsePrefix("2001:db8:2::/64"): "ul1",
			netip.MustParsePrefix("10.99.64.0/24"):   "roam0",
		},
	}
}

func (k *fakeKernel) Routes(table int) ([]kroute, error) {
	k.dumps++
	if k.closed {
		return nil, syscall.EBADF
	}
	if k.dumpErr != nil {
		return nil, k.dumpErr
	}
	var out []kroute
	for _, r := range k.routes {
		if r.table == table && r.proto == Protocol {
			out = append(out, r.kroute)
		}
	}
	return out, nil
}

func (k *fakeKernel) Apply(table int, ops []op) []error {
	errs := make([]error, len(ops))
	for i, o := range ops {
		k.applied = append(k.applied, fmt.Sprintf("%s %s", o.Kind, o.Route.route()))
		if k.closed {
			errs[i] = syscall.EBADF
			continue
		}
		if err := k.fail[o.Route.Prefix]; err != nil {
			errs[i] = err
			continue
		}
		errs[i] = k.apply(table, &ops[i])
	}
	return errs
}

// apply carries out o and sets the device of a route it adds or replaces.
func (k *fakeKernel) apply(table int, o *op) error {
	r := fakeRoute{table: table, proto: Protocol, kroute: o.Route}
	if r.Metric == 0 {
		r.Metric = defaultMetric(r.Prefix)
	}
	same := func(x fakeRoute) bool {
		return x.table == r.table && x.Prefix == r.Prefix && x.TOS == r.TOS && x.Metric == r.Metric
	}
	i := slices.IndexFunc(k.routes, same)
	if o.Kind == opDelete {
		i := slices.IndexFunc(k.routes, func(x fakeRoute) bool {
			return same(x) && x.proto == Protocol && x.Gateway == r.Gateway
		})
		if i < 0 {
			return syscall.ESRCH
		}
		k.routes = slices.Delete(k.routes, i, i+1)
		return nil
	}
	if o.Kind == opAdd && i >= 0 {
		return syscall.EEXIST
	}
	r.Dev = ""
	for p, dev := range k.connected {
		if p.Contains(r.Gateway) {
			r.Dev = dev
		}
	}
	switch {
	case r.Dev == "" && r.Prefix.Addr().Is4():
		return syscall.ENETUNREACH
	case r.Dev == "":
		return syscall.EHOSTUNREACH
	}
	if i >= 0 {
		k.routes[i] = r
	} else {
		k.routes = append(k.routes, r)
	}
	o.Route.Dev = r.Dev
	return nil
}

func (k *fakeKernel) Close() error {
	k.closed = true
	return nil
}

// state is every route of every table, sorted.
func (k *fakeKernel) state() []string {
	rs := slices.Clone(k.routes)
	slices.SortFunc(rs, func(a, b fakeRoute) int {
		return cmp.Or(cmp.Compare(a.table, b.table), compareKroute(a.kroute, b.kroute), cmp.Compare(a.proto, b.proto))
	})
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// roamRoute is a route fib would own in table (main unless given).
func roamRoute(prefix, gw, dev string, table ...int) fakeRoute {
	r := fakeRoute{table: tableMain, proto: Protocol, kroute: kroute{
		Prefix: netip.MustParsePrefix(prefix), Dev: dev, Unicast: true,
	}}
	if gw != "" {
		r.Gateway = netip.MustParseAddr(gw)
	}
	r.Metric = defaultMetric(r.Prefix)
	if len(table) > 0 {
		r.table = table[0]
	}
	return r
}

// otherRoute is a route of another protocol.
func otherRoute(prefix, gw, dev string, proto int) fakeRoute {
	r := roamRoute(prefix, gw, dev)
	r.proto = proto
	return r
}
