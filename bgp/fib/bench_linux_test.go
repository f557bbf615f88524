package fib

import (
	"net/netip"
	"testing"
)

// BenchmarkSync10k times one Sync of 10 000 IPv4 /32 routes (and 10 000
// IPv6 /128 ones) into a table of a test namespace: all new, the same again,
// all with a new gateway, all removed. ms/op is the whole Sync (one dump,
// the diff, the netlink requests); routes/s is 10 000 over that.
func BenchmarkSync10k(b *testing.B) {
	const n = 10000
	v6 := func(gw netip.Addr) []Route {
		out := make([]Route, n)
		base := netip.MustParseAddr("2001:db8:90::").As16()
		for i := range out {
			a := base
			a[14], a[15] = byte(i>>8), byte(i)
			out[i] = Route{Prefix: netip.PrefixFrom(netip.AddrFrom16(a), 128), Gateway: gw}
		}
		return out
	}
	l := newLab(b)
	f := l.open(b, Config{Table: 1000})
	for _, bm := range []struct {
		name        string
		before, now []Route
		res         Result
	}{
		{"add/v4", nil, routesN(n, gw1), Result{Added: n}},
		{"unchanged/v4", routesN(n, gw1), routesN(n, gw1), Result{}},
		{"change/v4", routesN(n, gw1), routesN(n, gw2), Result{Changed: n}},
		{"remove/v4", routesN(n, gw1), nil, Result{Removed: n}},
		{"add/v6", nil, v6(gw61), Result{Added: n}},
		{"change/v6", v6(gw61), v6(gw62), Result{Changed: n}},
		{"remove/v6", v6(gw61), nil, Result{Removed: n}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if _, err := f.Sync(nil); err != nil {
					b.Fatal(err)
				}
				if _, err := f.Sync(bm.before); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := f.Sync(bm.now)
				if err != nil || res != bm.res {
					b.Fatalf("Sync: %+v, %v; want %+v", res, err, bm.res)
				}
			}
			b.StopTimer()
			ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
			b.ReportMetric(ms, "ms/op")
			b.ReportMetric(n/(ms/1000), "routes/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
