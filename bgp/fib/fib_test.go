package fib

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func r(prefix, gw string) Route {
	return Route{Prefix: netip.MustParsePrefix(prefix), Gateway: netip.MustParseAddr(gw)}
}

func newTestFIB(t *testing.T, k *fakeKernel, cfg Config) *FIB {
	t.Helper()
	cfg, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	return newFIB(cfg, nil, k)
}

func TestSync(t *testing.T) {
	// Routes fib must never touch, in every case below.
	others := []fakeRoute{
		otherRoute("10.99.100.0/24", "198.51.100.9", "ul0", 4),   // static
		otherRoute("10.99.104.0/24", "203.0.113.9", "ul1", 186),  // bgp (FRR)
		roamRoute("10.99.101.0/24", "10.99.64.2", "roam0"),       // on the excluded device
		roamRoute("10.99.102.0/24", "", "roam0"),                 // tunnel's: no gateway
		roamRoute("10.99.105.0/24", "", "ul0"),                   // no gateway, not excluded
		roamRoute("10.99.103.0/24", "198.51.100.9", "ul0", 1000), // another table
		func() fakeRoute { // a blackhole with our protocol
			r := roamRoute("10.99.106.0/24", "", "")
			r.Unicast = false
			return r
		}(),
		func() fakeRoute { // multipath with our protocol
			r := roamRoute("10.99.107.0/24", "", "")
			r.Multipath = true
			return r
		}(),
	}
	for _, tc := range []struct {
		name    string
		have    []fakeRoute // besides others
		fail    map[netip.Prefix]error
		want    []Route
		res     Result
		errs    []string // substrings of the error, in order; none: no error
		applied []string // the ops sent, when checked
		after   []string // the kernel's routes besides others
	}{
		{
			name: "add to an empty table, both families",
			want: []Route{r("10.99.1.0/24", "203.0.113.2"), r("10.99.0.0/24", "198.51.100.2"), r("2001:db8:90::/48", "2001:db8:1::2")},
			res:  Result{Added: 3},
			applied: []string{
				"add 10.99.0.0/24 via 198.51.100.2", "add 10.99.1.0/24 via 203.0.113.2", "add 2001:db8:90::/48 via 2001:db8:1::2",
			},
			after: []string{
				"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 254",
				"10.99.1.0/24 via 203.0.113.2 dev ul1 proto 114 table 254",
				"2001:db8:90::/48 via 2001:db8:1::2 dev ul0 proto 114 table 254",
			},
		},
		{
			name:    "the same again sends nothing",
			have:    []fakeRoute{roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"), roamRoute("2001:db8:90::/48", "2001:db8:1::2", "ul0")},
			want:    []Route{r("10.99.0.0/24", "198.51.100.2"), r("2001:db8:90::/48", "2001:db8:1::2")},
			applied: []string{},
			after: []string{
				"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 254",
				"2001:db8:90::/48 via 2001:db8:1::2 dev ul0 proto 114 table 254",
			},
		},
		{
			name:    "a new gateway replaces the route",
			have:    []fakeRoute{roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"), roamRoute("2001:db8:90::/48", "2001:db8:1::2", "ul0")},
			want:    []Route{r("10.99.0.0/24", "203.0.113.2"), r("2001:db8:90::/48", "2001:db8:2::2")},
			res:     Result{Changed: 2},
			applied: []string{"change 10.99.0.0/24 via 203.0.113.2", "change 2001:db8:90::/48 via 2001:db8:2::2"},
			after: []string{
				"10.99.0.0/24 via 203.0.113.2 dev ul1 proto 114 table 254",
				"2001:db8:90::/48 via 2001:db8:2::2 dev ul1 proto 114 table 254",
			},
		},
		{
			name:    "routes no longer wanted are deleted",
			have:    []fakeRoute{roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"), roamRoute("2001:db8:90::/48", "2001:db8:1::2", "ul0")},
			want:    nil,
			res:     Result{Removed: 2},
			applied: []string{"delete 10.99.0.0/24 via 198.51.100.2", "delete 2001:db8:90::/48 via 2001:db8:1::2"},
		},
		{
			name: "adds and changes before deletes",
			have: []fakeRoute{roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"), roamRoute("10.99.1.0/24", "198.51.100.2", "ul0")},
			want: []Route{r("10.99.2.0/24", "198.51.100.2"), r("10.99.1.0/24", "203.0.113.2")},
			res:  Result{Added: 1, Changed: 1, Removed: 1},
			applied: []string{
				"change 10.99.1.0/24 via 203.0.113.2", "add 10.99.2.0/24 via 198.51.100.2", "delete 10.99.0.0/24 via 198.51.100.2",
			},
			after: []string{
				"10.99.1.0/24 via 203.0.113.2 dev ul1 proto 114 table 254",
				"10.99.2.0/24 via 198.51.100.2 dev ul0 proto 114 table 254",
			},
		},
		{
			name:    "a prefix on the excluded device is reported, not replaced",
			want:    []Route{r("10.99.101.0/24", "198.51.100.2"), r("10.99.0.0/24", "198.51.100.2")},
			res:     Result{Added: 1, Failed: 1},
			errs:    []string{"fib: sync table 254: 1 route failed; add 10.99.101.0/24 via 198.51.100.2: table 254 already has a route to 10.99.101.0/24 that fib does not own"},
			applied: []string{"add 10.99.0.0/24 via 198.51.100.2", "add 10.99.101.0/24 via 198.51.100.2"},
			after:   []string{"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 254"},
		},
		{
			name:  "a prefix of another protocol is reported, not replaced",
			want:  []Route{r("10.99.100.0/24", "198.51.100.2")},
			res:   Result{Failed: 1},
			errs:  []string{"add 10.99.100.0/24 via 198.51.100.2: table 254 already has a route to 10.99.100.0/24 that fib does not own", "file exists"},
			after: []string{},
		},
		{
			name: "unreachable gateways are reported, the other routes installed",
			have: []fakeRoute{roamRoute("10.99.3.0/24", "198.51.100.2", "ul0")},
			want: []Route{
				r("10.99.0.0/24", "198.51.100.2"),
				r("10.99.9.0/24", "10.99.254.2"),
				r("10.99.3.0/24", "10.99.254.3"),
				r("2001:db8:99::/48", "2001:db8:3::2"),
				r("2001:db8:90::/48", "2001:db8:1::2"),
			},
			res: Result{Added: 2, Failed: 3},
			errs: []string{
				"3 routes failed",
				"change 10.99.3.0/24 via 10.99.254.3: gateway not on a connected subnet: network is unreachable",
				"add 10.99.9.0/24 via 10.99.254.2: gateway not on a connected subnet",
				"add 2001:db8:99::/48 via 2001:db8:3::2: gateway not on a connected subnet: no route to host",
			},
			after: []string{
				"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 254",
				"10.99.3.0/24 via 198.51.100.2 dev ul0 proto 114 table 254", // kept its old gateway
				"2001:db8:90::/48 via 2001:db8:1::2 dev ul0 proto 114 table 254",
			},
		},
		{
			name: "a route of ours with another metric is deleted, the default one kept",
			have: []fakeRoute{
				roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"),
				func() fakeRoute { r := roamRoute("10.99.0.0/24", "203.0.113.2", "ul1"); r.Metric = 50; return r }(),
			},
			want:    []Route{r("10.99.0.0/24", "198.51.100.2")},
			res:     Result{Removed: 1},
			applied: []string{"delete 10.99.0.0/24 via 203.0.113.2"},
			after:   []string{"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 254"},
		},
		{
			name: "a route fib refuses keeps the kernel's route for its prefix",
			have: []fakeRoute{roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"), roamRoute("10.99.1.0/24", "198.51.100.2", "ul0")},
			want: []Route{
				{Prefix: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("2001:db8:1::2")},
				r("10.99.1.0/24", "198.51.100.3"),
				r("10.99.1.0/24", "203.0.113.3"),
				r("10.99.2.0/24", "203.0.113.2"),
			},
			res: Result{Added: 1, Failed: 2},
			errs: []string{
				"check 10.99.0.0/24 via 2001:db8:1::2: gateway and prefix are of different families",
				"check 10.99.1.0/24: wanted via 2 gateways (198.51.100.3, 203.0.113.3): want one",
			},
			applied: []string{"add 10.99.2.0/24 via 203.0.113.2"},
			after: []string{
				"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 254",
				"10.99.1.0/24 via 198.51.100.2 dev ul0 proto 114 table 254",
				"10.99.2.0/24 via 203.0.113.2 dev ul1 proto 114 table 254",
			},
		},
		{
			name:    "a route wanted twice is added once",
			want:    []Route{r("10.99.0.0/24", "198.51.100.2"), r("10.99.0.0/24", "198.51.100.2")},
			res:     Result{Added: 1},
			applied: []string{"add 10.99.0.0/24 via 198.51.100.2"},
			after:   []string{"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 254"},
		},
		{
			name: "any kernel error is reported with its route",
			have: []fakeRoute{roamRoute("10.99.5.0/24", "198.51.100.2", "ul0")},
			fail: map[netip.Prefix]error{
				netip.MustParsePrefix("10.99.4.0/24"): syscall.ENOMEM,
				netip.MustParsePrefix("10.99.5.0/24"): syscall.EPERM,
			},
			want: []Route{r("10.99.4.0/24", "198.51.100.2")},
			res:  Result{Failed: 2},
			errs: []string{
				"add 10.99.4.0/24 via 198.51.100.2: cannot allocate memory",
				"delete 10.99.5.0/24 via 198.51.100.2: operation not permitted",
			},
			after: []string{"10.99.5.0/24 via 198.51.100.2 dev ul0 proto 114 table 254"},
		},
		{
			name:  "a route deleted behind fib's back is not an error",
			have:  []fakeRoute{roamRoute("10.99.5.0/24", "198.51.100.2", "ul0")},
			fail:  map[netip.Prefix]error{netip.MustParsePrefix("10.99.5.0/24"): syscall.ESRCH},
			want:  nil,
			res:   Result{},
			after: []string{"10.99.5.0/24 via 198.51.100.2 dev ul0 proto 114 table 254"}, // the fake did not delete it
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel(append(slices.Clone(others), tc.have...)...)
			k.fail = tc.fail
			before := k.state()
			f := newTestFIB(t, k, Config{Exclude: []string{"roam0"}})
			res, err := f.Sync(tc.want)
			if res != tc.res {
				t.Errorf("Result %+v, want %+v", res, tc.res)
			}
			switch {
			case len(tc.errs) == 0 && err != nil:
				t.Errorf("error: %v", err)
			case len(tc.errs) > 0 && err == nil:
				t.Errorf("no error, want %q", tc.errs)
			case err != nil:
				msg, at := err.Error(), 0
				for _, s := range tc.errs {
					i := strings.Index(msg[at:], s)
					if i < 0 {
						t.Errorf("error %q\nlacks (in order) %q", msg, s)
						break
					}
					at += i + len(s)
				}
			}
			if tc.applied != nil && !slices.Equal(nonNil(k.applied), tc.applied) {
				t.Errorf("ops sent:\n%s\nwant:\n%s", strings.Join(k.applied, "\n"), strings.Join(tc.applied, "\n"))
			}
			var othersNow, ours []string
			for _, s := range k.state() {
				if isOther(s) {
					othersNow = append(othersNow, s)
				} else {
					ours = append(ours, s)
				}
			}
			var othersBefore []string
			for _, s := range before {
				if isOther(s) {
					othersBefore = append(othersBefore, s)
				}
			}
			if !slices.Equal(othersNow, othersBefore) {
				t.Errorf("routes fib must not touch:\n%s\nwere:\n%s", strings.Join(othersNow, "\n"), strings.Join(othersBefore, "\n"))
			}
			if tc.after != nil && !slices.Equal(nonNil(ours), tc.after) {
				t.Errorf("fib's routes after:\n%s\nwant:\n%s", strings.Join(ours, "\n"), strings.Join(tc.after, "\n"))
			}
		})
	}
}

// isOther reports whether a fake route line is one of TestSync's others
// (10.99.100.0/24-10.99.107.0/24).
func isOther(line string) bool {
	p := netip.MustParsePrefix(strings.Fields(line)[0])
	return netip.MustParsePrefix("10.99.96.0/20").Contains(p.Addr()) && p.Bits() == 24
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestSyncTwiceIsIdempotent(t *testing.T) {
	k := newFakeKernel()
	f := newTestFIB(t, k, Config{Table: 1000})
	want := []Route{r("10.99.0.0/24", "198.51.100.2"), r("2001:db8:90::/48", "2001:db8:2::2"), r("0.0.0.0/0", "203.0.113.1")}
	if res, err := f.Sync(want); err != nil || res != (Result{Added: 3}) {
		t.Fatalf("first Sync: %+v, %v", res, err)
	}
	k.applied = nil
	if res, err := f.Sync(want); err != nil || res != (Result{}) || len(k.applied) != 0 {
		t.Fatalf("second Sync: %+v, %v, sent %q", res, err, k.applied)
	}
	if got := k.state(); !slices.Equal(got, []string{
		"0.0.0.0/0 via 203.0.113.1 dev ul1 proto 114 table 1000",
		"10.99.0.0/24 via 198.51.100.2 dev ul0 proto 114 table 1000",
		"2001:db8:90::/48 via 2001:db8:2::2 dev ul1 proto 114 table 1000",
	}) {
		t.Errorf("kernel: %q", got)
	}
}

func TestList(t *testing.T) {
	k := newFakeKernel(
		roamRoute("2001:db8:90::/48", "2001:db8:1::2", "ul0"),
		roamRoute("10.99.1.0/24", "203.0.113.2", "ul1"),
		roamRoute("10.99.0.0/24", "198.51.100.2", "ul0"),
		roamRoute("10.99.101.0/24", "10.99.64.2", "roam0"),
		roamRoute("10.99.102.0/24", "", "roam0"),
		roamRoute("10.99.103.0/24", "198.51.100.2", "ul0", 1000),
		otherRoute("10.99.100.0/24", "198.51.100.2", "ul0", 4),
	)
	f := newTestFIB(t, k, Config{Exclude: []string{"roam0"}})
	got, err := f.List()
	want := []Route{r("10.99.0.0/24", "198.51.100.2"), r("10.99.1.0/24", "203.0.113.2"), r("2001:db8:90::/48", "2001:db8:1::2")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List: %v, %v; want %v", got, err, want)
	}
	// Excluding nothing, the route with a gateway on roam0 is fib's; the
	// one without a gateway still is not.
	f = newTestFIB(t, k, Config{})
	got, err = f.List()
	want = []Route{r("10.99.0.0/24", "198.51.100.2"), r("10.99.1.0/24", "203.0.113.2"), r("10.99.101.0/24", "10.99.64.2"), r("2001:db8:90::/48", "2001:db8:1::2")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List excluding nothing: %v, %v; want %v", got, err, want)
	}
}

func TestDumpError(t *testing.T) {
	k := newFakeKernel()
	k.dumpErr = syscall.ENOBUFS
	f := newTestFIB(t, k, Config{})
	res, err := f.Sync([]Route{r("10.99.0.0/24", "198.51.100.2")})
	if !errors.Is(err, syscall.ENOBUFS) || res != (Result{}) || len(k.applied) != 0 {
		t.Errorf("Sync with a failing dump: %+v, %v, sent %q", res, err, k.applied)
	}
	if err == nil || err.Error() != "fib: sync table 254: list routes: no buffer space available" {
		t.Errorf("error: %v", err)
	}
	if _, err := f.List(); !errors.Is(err, syscall.ENOBUFS) {
		t.Errorf("List with a failing dump: %v", err)
	}
}

func TestClose(t *testing.T) {
	k := newFakeKernel()
	f := newTestFIB(t, k, Config{})
	if err := f.Close(); err != nil || !k.closed {
		t.Fatalf("Close: %v, kernel closed %v", err, k.closed)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Sync(nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Sync after Close: %v", err)
	}
	if _, err := f.List(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("List after Close: %v", err)
	}
}

func TestSyncErrorLists(t *testing.T) {
	var want []Route
	for i := range 25 {
		want = append(want, Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i), 0}), 24), Gateway: netip.MustParseAddr("10.99.254.2")})
	}
	f := newTestFIB(t, newFakeKernel(), Config{})
	res, err := f.Sync(want)
	if res != (Result{Failed: 25}) {
		t.Errorf("Result %+v", res)
	}
	var se *SyncError
	if !errors.As(err, &se) || len(se.Errors) != 25 || se.Table != tableMain {
		t.Fatalf("error %v", err)
	}
	var re *RouteError
	if !errors.As(err, &re) || re.Route != want[0] || re.Op != "add" || !errors.Is(re, ErrUnreachable) {
		t.Errorf("first RouteError: %+v", re)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "fib: sync table 254: 25 routes failed; add 10.99.0.0/24 via 10.99.254.2: ") ||
		!strings.HasSuffix(msg, "; and 15 more") || strings.Count(msg, "network is unreachable") != 10 {
		t.Errorf("message: %s", msg)
	}
}

func TestSyncLogs(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, _ := Config{}.validate()
	f := newFIB(cfg, log, newFakeKernel(roamRoute("10.99.0.0/24", "198.51.100.2", "ul0")))
	if _, err := f.Sync([]Route{r("10.99.0.0/24", "203.0.113.2"), r("10.99.1.0/24", "198.51.100.2")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`level=DEBUG msg="route changed" component=fib prefix=10.99.0.0/24 gateway="198.51.100.2 -> 203.0.113.2"`,
		`level=DEBUG msg="route added" component=fib route="10.99.1.0/24 via 198.51.100.2"`,
		`level=INFO msg="routes synced" component=fib table=254 wanted=2 added=1 changed=1 removed=0 failed=0 took=`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if _, err := f.Sync([]Route{r("10.99.0.0/24", "203.0.113.2"), r("10.99.1.0/24", "198.51.100.2")}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("a Sync that changed nothing logged:\n%s", buf.String())
	}
}
