package bgp

import (
	"net/netip"
	"testing"
)

func TestRejectReason(t *testing.T) {
	rules := importRules{
		overlay:  []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fd00:64::/48")},
		internal: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("2001:db8:244::/48")},
	}
	withDefault := rules
	withDefault.acceptDefault = true
	tests := []struct {
		name   string
		rules  importRules
		prefix string
		kind   NeighborKind
		own    bool
		want   string
	}{
		{"ordinary route", rules, "192.0.2.0/24", KindExternal, false, ""},
		{"ordinary v6 route", rules, "2001:db8:1::/48", KindRoam, false, ""},
		{"own prefix", rules, "10.244.1.0/24", KindRoam, true, "own"},
		{"own wins over martian", rules, "127.0.0.0/8", KindRoam, true, "own"},
		{"default v4", rules, "0.0.0.0/0", KindExternal, false, "default"},
		{"default v6", rules, "::/0", KindRoam, false, "default"},
		{"default accepted", withDefault, "0.0.0.0/0", KindExternal, false, ""},
		{"default v6 accepted", withDefault, "::/0", KindExternal, false, ""},
		{"this network", rules, "0.0.0.0/8", KindRoam, false, "martian"},
		{"inside this network", rules, "0.1.2.0/24", KindRoam, false, "martian"},
		{"loopback", rules, "127.0.0.0/8", KindRoam, false, "martian"},
		{"loopback host", rules, "127.0.0.1/32", KindExternal, false, "martian"},
		{"link local", rules, "169.254.7.0/24", KindRoam, false, "martian"},
		{"multicast", rules, "224.0.0.0/4", KindRoam, false, "martian"},
		{"inside multicast", rules, "239.1.0.0/16", KindRoam, false, "martian"},
		{"reserved", rules, "240.0.0.0/4", KindRoam, false, "martian"},
		{"broadcast", rules, "255.255.255.255/32", KindRoam, false, "martian"},
		{"covers loopback, not inside", rules, "64.0.0.0/2", KindExternal, false, ""},
		{"v6 unspecified", rules, "::/128", KindRoam, false, "martian"},
		{"v6 loopback", rules, "::1/128", KindRoam, false, "martian"},
		{"v6 link local", rules, "fe80::/64", KindRoam, false, "martian"},
		{"v6 multicast", rules, "ff02::/16", KindRoam, false, "martian"},
		{"v4-mapped is not v4", rules, "::ffff:127.0.0.0/104", KindRoam, false, ""},
		{"overlay pool", rules, "100.64.0.0/10", KindRoam, false, "overlay"},
		{"overlay address", rules, "100.64.0.7/32", KindRoam, false, "overlay"},
		{"overlay v6", rules, "fd00:64::7/128", KindExternal, false, "overlay"},
		{"covers the overlay, not inside", rules, "100.0.0.0/8", KindExternal, false, ""},
		{"internal from roam", rules, "10.244.3.0/24", KindRoam, false, ""},
		{"internal from external", rules, "10.244.3.0/24", KindExternal, false, "internal"},
		{"internal range itself from external", rules, "10.244.0.0/16", KindExternal, false, "internal"},
		{"internal v6 from external", rules, "2001:db8:244:1::/64", KindExternal, false, "internal"},
		{"covers internal from external", rules, "10.0.0.0/8", KindExternal, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.prefix)
			if got := tt.rules.rejectReason(p, tt.kind, tt.own); got != tt.want {
				t.Errorf("rejectReason(%s, %s, own=%v) = %q, want %q", p, tt.kind, tt.own, got, tt.want)
			}
		})
	}
}
