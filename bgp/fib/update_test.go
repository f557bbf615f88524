package fib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestUpdate(t *testing.T) {
	pfx := netip.MustParsePrefix
	k := newFakeKernel(
		roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"),
		roamRoute("10.99.1.0/24", "198.51.100.2", "ul0"),
		roamRoute("10.99.2.0/24", "198.51.100.2", "ul0"),
		otherRoute("10.99.100.0/24", "198.51.100.9", "ul0", 4),
	)
	f := newTestFIB(t, k, Config{})
	// The first Update of a FIB that never synced dumps the table once.
	res, err := f.Update([]netip.Prefix{pfx("10.99.0.0/24")}, []Route{r("10.99.3.0/24", "203.0.113.2")})
	if err != nil || res != (Result{Added: 1, Removed: 1}) || k.dumps != 1 {
		t.Fatalf("first Update: %+v, %v, %d dumps; want 1 added, 1 removed, 1 dump", res, err, k.dumps)
	}
	k.applied = nil
	for _, step := range []struct {
		name     string
		prefixes []string
		want     []Route
		res      Result
		errs     string
		applied  []string
		after    []string
	}{
		{
			name:     "a new gateway, a removal: the other routes stay",
			prefixes: []string{"10.99.1.0/24", "10.99.3.0/24"},
			want:     []Route{r("10.99.1.0/24", "203.0.113.2")},
			res:      Result{Changed: 1, Removed: 1},
			applied:  []string{"change 10.99.1.0/24 via 203.0.113.2", "delete 10.99.3.0/24 via 203.0.113.2"},
			after: []string{
				"10.99.1.0/24 via 203.0.113.2 dev ul1 proto 114 table 254",
				"10.99.2.0/24 via 198.51.100.2 dev ul0 proto 114 table 254",
			},
		},
		{
			name:     "the same again sends nothing",
			prefixes: []string{"10.99.1.0/24", "10.99.3.0/24"},
			want:     []Route{r("10.99.1.0/24", "203.0.113.2")},
			applied:  []string{},
		},
		{
			name:    "a wanted route's prefix need not be listed",
			want:    []Route{r("10.99.4.0/24", "198.51.100.3"), r("10.99.2.0/24", "198.51.100.2")},
			res:     Result{Added: 1},
			applied: []string{"add 10.99.4.0/24 via 198.51.100.3"},
		},
		{
			name:    "failures are reported as by Sync",
			want:    []Route{r("10.99.100.0/24", "198.51.100.2"), r("10.99.5.0/24", "10.99.254.2")},
			res:     Result{Failed: 2},
			errs:    "fib: sync table 254: 2 routes failed; add 10.99.5.0/24 via 10.99.254.2: gateway not on a connected subnet: network is unreachable; add 10.99.100.0/24 via 198.51.100.2: table 254 already has a route to 10.99.100.0/24 that fib does not own",
			applied: []string{"add 10.99.5.0/24 via 10.99.254.2", "add 10.99.100.0/24 via 198.51.100.2"},
		},
		{
			name:     "everything removed",
			prefixes: []string{"10.99.1.0/24", "10.99.2.0/24", "10.99.4.0/24"},
			res:      Result{Removed: 3},
			after:    []string{},
		},
	} {
		k.applied = nil
		res, err := f.Update(mustPrefixes(step.prefixes), step.want)
		if res != step.res {
			t.Errorf("%s: Result %+v, want %+v", step.name, res, step.res)
		}
		if msg := fmt.Sprint(err); (step.errs == "") != (err == nil) || !strings.HasPrefix(msg, step.errs) {
			t.Errorf("%s: error %v, want %q", step.name, err, step.errs)
		}
		if step.applied != nil && !slices.Equal(nonNil(k.applied), step.applied) {
			t.Errorf("%s: ops sent %q, want %q", step.name, k.applied, step.applied)
		}
		var ours []string
		for _, s := range k.state() {
			if !isOther(s) {
				ours = append(ours, s)
			}
		}
		if step.after != nil && !slices.Equal(nonNil(ours), step.after) {
			t.Errorf("%s: fib's routes after:\n%s\nwant:\n%s", step.name, strings.Join(ours, "\n"), strings.Join(step.after, "\n"))
		}
	}
	if k.dumps != 1 {
		t.Errorf("%d dumps; want the first Update's only", k.dumps)
	}
}

func mustPrefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestUpdateLostOutcome: after an op whose outcome fib could not learn, the
// next Update dumps the table first.
func TestUpdateLostOutcome(t *testing.T) {
	k := newFakeKernel()
	f := newTestFIB(t, k, Config{})
	if _, err := f.Sync(nil); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("10.99.0.0/24")
	k.fail = map[netip.Prefix]error{p: errors.New("replies lost")}
	if _, err := f.Update(nil, []Route{r("10.99.0.0/24", "198.51.100.2")}); err == nil {
		t.Fatal("no error for a lost outcome")
	}
	k.fail = nil
	k.routes = append(k.routes, roamRoute("10.99.0.0/24", "198.51.100.2", "ul0")) // it was done after all
	dumps := k.dumps
	res, err := f.Update(nil, []Route{r("10.99.0.0/24", "198.51.100.2")})
	if err != nil || res != (Result{}) || k.dumps != dumps+1 {
		t.Errorf("Update after a lost outcome: %+v, %v, %d dumps; want nothing to do after one dump", res, err, k.dumps-dumps)
	}
	// A refusal by the kernel is an outcome: no dump.
	k.fail = map[netip.Prefix]error{p: syscall.ENOMEM}
	f.Update([]netip.Prefix{p}, nil)
	k.fail = nil
	if res, err := f.Update([]netip.Prefix{p}, nil); err != nil || res != (Result{Removed: 1}) || k.dumps != dumps+1 {
		t.Errorf("Update after a refused delete: %+v, %v, %d dumps; want it removed without a dump", res, err, k.dumps-dumps)
	}
}

// TestUpdateMatchesSync drives two kernels through random changes: one FIB
// re-syncs the whole set each step, the other updates only the prefixes
// that changed. Both kernels must hold the same routes after every step, and
// a final Sync of the updated one must find nothing to do.
func TestUpdateMatchesSync(t *testing.T) {
	prefixes := []netip.Prefix{}
	for i := range 12 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i), 0}), 24))
	}
	prefixes = append(prefixes, netip.MustParsePrefix("10.99.100.0/24"), // another protocol's
		netip.MustParsePrefix("2001:db8:90::/48"), netip.MustParsePrefix("2001:db8:91::/48"))
	// 10.99.254.2 is unreachable; 10.99.64.2 is on the excluded device,
	// so a route via it is not fib's once added.
	gws4 := []string{"198.51.100.2", "203.0.113.2", "10.99.254.2", "10.99.64.2"}
	gws6 := []string{"2001:db8:1::2", "2001:db8:2::2", "2001:db8:3::2", "2001:db8:1::3"}
	initial := func() []fakeRoute {
		return []fakeRoute{
			otherRoute("10.99.100.0/24", "198.51.100.9", "ul0", 4),
			roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"),
			func() fakeRoute { r := roamRoute("10.99.1.0/24", "203.0.113.2", "ul1"); r.Metric = 50; return r }(),
		}
	}
	for seed := range uint64(50) {
		rnd := rand.New(rand.NewPCG(seed, 1))
		ks, ku := newFakeKernel(initial()...), newFakeKernel(initial()...)
		cfg := Config{Exclude: []string{"roam0"}}
		fs, fu := newTestFIB(t, ks, cfg), newTestFIB(t, ku, cfg)
		want := map[netip.Prefix][]Route{
			prefixes[0]: {r("10.99.0.0/24", "198.51.100.2")},
			prefixes[1]: {r("10.99.1.0/24", "198.51.100.2")}, // replaces the one with metric 50
		}
		all := func() []Route {
			var out []Route
			for _, rs := range want {
				out = append(out, rs...)
			}
			return out
		}
		if _, err := fu.Sync(all()); err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Sync(all()); err != nil {
			t.Fatal(err)
		}
		for step := range 40 {
			var changed []netip.Prefix
			var wantChanged []Route
			for range 1 + rnd.IntN(4) {
				p := prefixes[rnd.IntN(len(prefixes))]
				gws := gws4
				if p.Addr().Is6() {
					gws = gws6
				}
				switch n := rnd.IntN(10); {
				case n < 3:
					delete(want, p)
				case n < 9:
					want[p] = []Route{{Prefix: p, Gateway: netip.MustParseAddr(gws[rnd.IntN(len(gws))])}}
				default: // wanted via two gateways: refused
					want[p] = []Route{{Prefix: p, Gateway: netip.MustParseAddr(gws[0])}, {Prefix: p, Gateway: netip.MustParseAddr(gws[1])}}
				}
				changed = append(changed, p)
			}
			for _, p := range changed {
				wantChanged = append(wantChanged, want[p]...)
			}
			_, errS := fs.Sync(all())
			_, errU := fu.Update(changed, wantChanged)
			if s, u := ks.state(), ku.state(); !slices.Equal(s, u) {
				t.Fatalf("seed %d step %d: after Sync:\n%s\nafter Update of %v:\n%s", seed, step, strings.Join(s, "\n"), changed, strings.Join(u, "\n"))
			}
			if (errS == nil) != (errU == nil) && errU != nil {
				// Update reports failures of the changed prefixes only.
				t.Fatalf("seed %d step %d: Sync error %v, Update error %v", seed, step, errS, errU)
			}
		}
		ku.applied = nil
		if res, _ := fu.Sync(all()); res.Added+res.Changed+res.Removed != 0 {
			t.Errorf("seed %d: a Sync after the Updates changed %+v: %q", seed, res, ku.applied)
		}
	}
}
