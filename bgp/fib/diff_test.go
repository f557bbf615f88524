package fib

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func kr(prefix, gw, dev string) kroute {
	k := kroute{Prefix: netip.MustParsePrefix(prefix), Dev: dev, Unicast: true}
	if gw != "" {
		k.Gateway = netip.MustParseAddr(gw)
	}
	k.Metric = defaultMetric(k.Prefix)
	return k
}

func opStrings(ops []op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		s := fmt.Sprintf("%s %s", o.Kind, o.Route.route())
		if o.Kind == opChange {
			s += " (was via " + o.Old.Gateway.String() + ")"
		}
		if o.Kind == opDelete && o.Route.Metric != defaultMetric(o.Route.Prefix) {
			s += fmt.Sprintf(" metric %d", o.Route.Metric)
		}
		if o.Kind == opDelete && o.Route.TOS != 0 {
			s += fmt.Sprintf(" tos %d", o.Route.TOS)
		}
		out[i] = s
	}
	return out
}

func TestPlan(t *testing.T) {
	withMetric := func(k kroute, m int) kroute { k.Metric = m; return k }
	withTOS := func(k kroute, tos int) kroute { k.TOS = tos; return k }
	for _, tc := range []struct {
		name string
		have []kroute
		want []Route
		ops  []string
		errs []string
	}{
		{name: "nothing", ops: []string{}},
		{
			name: "all new, in prefix order, IPv4 first",
			want: []Route{r("2001:db8:90::/48", "2001:db8:1::2"), r("10.99.1.0/24", "198.51.100.2"), r("10.99.0.0/16", "198.51.100.2"), r("0.0.0.0/0", "203.0.113.1")},
			ops: []string{
				"add 0.0.0.0/0 via 203.0.113.1", "add 10.99.0.0/16 via 198.51.100.2",
				"add 10.99.1.0/24 via 198.51.100.2", "add 2001:db8:90::/48 via 2001:db8:1::2",
			},
		},
		{
			name: "unchanged",
			have: []kroute{kr("10.99.0.0/24", "198.51.100.2", "ul0"), kr("2001:db8:90::/48", "2001:db8:1::2", "ul0")},
			want: []Route{r("2001:db8:90::/48", "2001:db8:1::2"), r("10.99.0.0/24", "198.51.100.2")},
			ops:  []string{},
		},
		{
			name: "changed gateway",
			have: []kroute{kr("10.99.0.0/24", "198.51.100.2", "ul0")},
			want: []Route{r("10.99.0.0/24", "203.0.113.2")},
			ops:  []string{"change 10.99.0.0/24 via 203.0.113.2 (was via 198.51.100.2)"},
		},
		{
			name: "same address, other prefix length is another route",
			have: []kroute{kr("10.99.0.0/24", "198.51.100.2", "ul0")},
			want: []Route{r("10.99.0.0/25", "198.51.100.2")},
			ops:  []string{"add 10.99.0.0/25 via 198.51.100.2", "delete 10.99.0.0/24 via 198.51.100.2"},
		},
		{
			name: "deletes last, sorted",
			have: []kroute{kr("2001:db8:91::/48", "2001:db8:1::2", "ul0"), kr("10.99.2.0/24", "198.51.100.2", "ul0"), kr("10.99.1.0/24", "198.51.100.2", "ul0")},
			want: []Route{r("10.99.3.0/24", "198.51.100.2")},
			ops: []string{
				"add 10.99.3.0/24 via 198.51.100.2", "delete 10.99.1.0/24 via 198.51.100.2",
				"delete 10.99.2.0/24 via 198.51.100.2", "delete 2001:db8:91::/48 via 2001:db8:1::2",
			},
		},
		{
			name: "other metrics and TOS are stale; the default one is kept",
			have: []kroute{
				withMetric(kr("10.99.0.0/24", "203.0.113.2", "ul1"), 20),
				kr("10.99.0.0/24", "198.51.100.2", "ul0"),
				withTOS(kr("10.99.0.0/24", "198.51.100.2", "ul0"), 4),
				withMetric(kr("2001:db8:90::/48", "2001:db8:1::2", "ul0"), 0),
			},
			want: []Route{r("10.99.0.0/24", "198.51.100.2"), r("2001:db8:90::/48", "2001:db8:1::2")},
			ops: []string{
				"add 2001:db8:90::/48 via 2001:db8:1::2",
				"delete 10.99.0.0/24 via 198.51.100.2 tos 4",
				"delete 10.99.0.0/24 via 203.0.113.2 metric 20",
				"delete 2001:db8:90::/48 via 2001:db8:1::2 metric 0",
			},
		},
		{
			name: "only a stale route for a wanted prefix: add, then delete it",
			have: []kroute{withMetric(kr("10.99.0.0/24", "198.51.100.2", "ul0"), 20)},
			want: []Route{r("10.99.0.0/24", "198.51.100.2")},
			ops:  []string{"add 10.99.0.0/24 via 198.51.100.2", "delete 10.99.0.0/24 via 198.51.100.2 metric 20"},
		},
		{
			name: "two routes with the default key (appended): one kept, the other deleted",
			have: []kroute{kr("10.99.0.0/24", "198.51.100.2", "ul0"), kr("10.99.0.0/24", "203.0.113.2", "ul1")},
			want: []Route{r("10.99.0.0/24", "198.51.100.2")},
			ops:  []string{"delete 10.99.0.0/24 via 203.0.113.2"},
		},
		{
			name: "duplicates are one route",
			want: []Route{r("10.99.0.0/24", "198.51.100.2"), r("10.99.0.0/24", "198.51.100.2")},
			ops:  []string{"add 10.99.0.0/24 via 198.51.100.2"},
		},
		{
			name: "a prefix wanted via two gateways is refused and its route kept",
			have: []kroute{kr("10.99.0.0/24", "198.51.100.2", "ul0"), withMetric(kr("10.99.0.0/24", "198.51.100.5", "ul0"), 7)},
			want: []Route{r("10.99.0.0/24", "203.0.113.2"), r("10.99.0.0/24", "198.51.100.3"), r("10.99.0.0/24", "203.0.113.2")},
			ops:  []string{},
			errs: []string{"check 10.99.0.0/24: wanted via 2 gateways (198.51.100.3, 203.0.113.2): want one"},
		},
		{
			name: "refused routes keep their prefix's routes; the others go ahead",
			have: []kroute{kr("10.99.0.0/24", "198.51.100.2", "ul0"), kr("2001:db8:90::/48", "2001:db8:1::2", "ul0"), kr("10.99.9.0/24", "198.51.100.2", "ul0")},
			want: []Route{
				{Prefix: netip.MustParsePrefix("10.99.0.0/24")},
				{Prefix: netip.MustParsePrefix("2001:db8:90::/48"), Gateway: netip.MustParseAddr("fe80::1")},
				{Prefix: netip.MustParsePrefix("10.99.9.1/24"), Gateway: netip.MustParseAddr("198.51.100.2")},
				r("10.99.1.0/24", "198.51.100.2"),
			},
			ops: []string{"add 10.99.1.0/24 via 198.51.100.2"},
			errs: []string{
				"check 10.99.0.0/24: no gateway",
				"check 10.99.9.1/24 via 198.51.100.2: host bits set: want 10.99.9.0/24",
				"check 2001:db8:90::/48 via fe80::1: link-local gateway needs a device: not supported",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have := slices.Clone(tc.have)
			ops, errs := plan(have, tc.want)
			if got := opStrings(ops); !slices.Equal(got, tc.ops) {
				t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.ops, "\n"))
			}
			var got []string
			for _, e := range errs {
				got = append(got, strings.TrimPrefix(e.Error(), "fib: "))
			}
			if !slices.Equal(got, tc.errs) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.errs, "\n"))
			}
			for _, o := range ops {
				if o.Kind != opDelete && (o.Route.Metric != 0 || o.Route.TOS != 0 || o.Route.Dev != "") {
					t.Errorf("%s carries metric %d tos %d dev %q: the kernel chooses those", o.Kind, o.Route.Metric, o.Route.TOS, o.Route.Dev)
				}
			}
		})
	}
}

// TestPlanReachesWant applies plan's ops to a model of the table and
// checks the result is want, for have and want drawn from a small space.
func TestPlanReachesWant(t *testing.T) {
	prefixes := []string{"10.99.0.0/24", "10.99.1.0/24", "2001:db8:90::/48"}
	gws4 := []string{"198.51.100.2", "203.0.113.2"}
	gws6 := []string{"2001:db8:1::2", "2001:db8:2::2"}
	// Each prefix: absent, or via one of two gateways, in have and in want.
	for code := range 9 * 9 * 9 {
		var have []kroute
		var want []Route
		c := code
		for _, p := range prefixes {
			gws := gws4
			if strings.Contains(p, ":") {
				gws = gws6
			}
			h, w := c%3, (c/3)%3
			c /= 9
			if h > 0 {
				have = append(have, kr(p, gws[h-1], "ul0"))
			}
			if w > 0 {
				want = append(want, r(p, gws[w-1]))
			}
		}
		ops, errs := plan(slices.Clone(have), want)
		if len(errs) > 0 {
			t.Fatalf("have %v want %v: %v", have, want, errs)
		}
		table := map[netip.Prefix]netip.Addr{}
		for _, k := range have {
			table[k.Prefix] = k.Gateway
		}
		for _, o := range ops {
			switch o.Kind {
			case opAdd:
				if _, ok := table[o.Route.Prefix]; ok {
					t.Fatalf("have %v want %v: add of existing %s", have, want, o.Route.Prefix)
				}
				table[o.Route.Prefix] = o.Route.Gateway
			case opChange:
				table[o.Route.Prefix] = o.Route.Gateway
			case opDelete:
				delete(table, o.Route.Prefix)
			}
		}
		got := map[netip.Prefix]netip.Addr{}
		for _, w := range want {
			got[w.Prefix] = w.Gateway
		}
		if fmt.Sprint(table) != fmt.Sprint(got) {
			t.Fatalf("have %v want %v: ops %q give %v", have, want, opStrings(ops), table)
		}
	}
}

func TestOwned(t *testing.T) {
	exclude := []string{"roam0", "wg1"}
	mod := func(f func(*kroute)) kroute {
		k := kr("10.99.0.0/24", "198.51.100.2", "ul0")
		f(&k)
		return k
	}
	for _, tc := range []struct {
		name string
		kr   kroute
		want bool
	}{
		{"via a gateway on an underlay device", kr("10.99.0.0/24", "198.51.100.2", "ul0"), true},
		{"IPv6", kr("2001:db8:90::/48", "2001:db8:1::2", "ul0"), true},
		{"other metric: fib's, to be deleted", mod(func(k *kroute) { k.Metric = 30 }), true},
		{"on an excluded device", kr("10.99.0.0/24", "10.99.64.2", "roam0"), false},
		{"on another excluded device", kr("10.99.0.0/24", "10.99.64.2", "wg1"), false},
		{"no gateway (a tunnel route)", kr("10.99.0.0/24", "", "ul0"), false},
		{"multipath", mod(func(k *kroute) { k.Multipath, k.Gateway, k.Dev = true, netip.Addr{}, "" }), false},
		{"blackhole", mod(func(k *kroute) { k.Unicast = false }), false},
		{"device unknown", mod(func(k *kroute) { k.Dev = "" }), false},
		{"IPv4 via an IPv6 gateway", mod(func(k *kroute) { k.Gateway = netip.MustParseAddr("2001:db8:1::2") }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := owned(tc.kr, exclude); got != tc.want {
				t.Errorf("owned(%+v) = %v, want %v", tc.kr, got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		prefix, gw string
		err        string
	}{
		{"10.99.0.0/24", "198.51.100.2", ""},
		{"0.0.0.0/0", "198.51.100.2", ""},
		{"10.99.0.1/32", "169.254.0.1", ""},
		{"2001:db8:90::/48", "2001:db8:1::2", ""},
		{"::/0", "2001:db8:1::2", ""},
		{"", "198.51.100.2", "invalid prefix"},
		{"10.99.0.1/24", "198.51.100.2", "host bits set: want 10.99.0.0/24"},
		{"::ffff:10.99.0.0/120", "198.51.100.2", "IPv4-mapped IPv6 prefix"},
		{"10.99.0.0/24", "", "no gateway"},
		{"10.99.0.0/24", "::ffff:198.51.100.2", "IPv4-mapped IPv6 gateway"},
		{"10.99.0.0/24", "2001:db8:1::2", "gateway and prefix are of different families"},
		{"2001:db8:90::/48", "198.51.100.2", "gateway and prefix are of different families"},
		{"2001:db8:90::/48", "2001:db8:1::2%ul0", "gateway has a zone"},
		{"10.99.0.0/24", "0.0.0.0", "gateway is not a unicast address"},
		{"10.99.0.0/24", "224.0.0.1", "gateway is not a unicast address"},
		{"10.99.0.0/24", "255.255.255.255", "gateway is not a unicast address"},
		{"2001:db8:90::/48", "::", "gateway is not a unicast address"},
		{"2001:db8:90::/48", "fe80::1", "link-local gateway needs a device"},
	} {
		t.Run(tc.prefix+" via "+tc.gw, func(t *testing.T) {
			var rt Route
			if tc.prefix != "" {
				rt.Prefix = netip.MustParsePrefix(tc.prefix)
			}
			if tc.gw != "" {
				rt.Gateway = netip.MustParseAddr(tc.gw)
			}
			err := check(rt)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("check: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("check: %v, want %q", err, tc.err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		table int
		err   string
	}{
		{"zero is main", Config{}, 254, ""},
		{"main", Config{Table: 254}, 254, ""},
		{"a custom table", Config{Table: 1000}, 1000, ""},
		{"the largest", Config{Table: 1<<32 - 1}, 1<<32 - 1, ""},
		{"one", Config{Table: 1}, 1, ""},
		{"negative", Config{Table: -1}, 0, `fib: config: Table -1: want 1-4294967295 (0 for main)`},
		{"too large", Config{Table: 1 << 32}, 0, `fib: config: Table 4294967296: want 1-4294967295 (0 for main)`},
		{"local", Config{Table: 255}, 0, `fib: config: Table 255 is reserved by the kernel`},
		{"default", Config{Table: 253}, 0, `fib: config: Table 253 is reserved`},
		{"compat", Config{Table: 252}, 0, `fib: config: Table 252 is reserved`},
		{"exclude", Config{Exclude: []string{"roam0", "wg0"}}, 254, ""},
		{"empty device name", Config{Exclude: []string{"roam0", ""}}, 0, `fib: config: Exclude[1] "": want an interface name of 1-15 bytes`},
		{"long device name", Config{Exclude: []string{"abcdefghijklmnop"}}, 0, `fib: config: Exclude[0] "abcdefghijklmnop": want an interface name of 1-15 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.validate()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
				t.Fatalf("validate: %v, want %q", err, tc.err)
			case tc.err == "" && got.Table != tc.table:
				t.Errorf("Table %d, want %d", got.Table, tc.table)
			}
		})
	}
	// validate copies Exclude: the caller's slice may change afterwards.
	ex := []string{"roam0"}
	got, _ := Config{Exclude: ex}.validate()
	ex[0] = "eth0"
	if got.Exclude[0] != "roam0" {
		t.Errorf("Exclude shares the caller's slice")
	}
}
