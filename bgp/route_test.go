package bgp

import (
	"net/netip"
	"testing"
)

func TestPathRoundTrip(t *testing.T) {
	tests := []struct {
		prefix, nextHop string
		wantErr         bool
	}{
		{"10.244.1.0/24", "100.64.0.1", false},
		{"2001:db8:1::/64", "fd00::1", false},
		{"0.0.0.0/0", "192.0.2.1", false},
		{"10.244.1.0/24", "fd00::1", true},
		{"2001:db8:1::/64", "100.64.0.1", true},
		{"2001:db8:1::/64", "::ffff:100.64.0.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+" via "+tt.nextHop, func(t *testing.T) {
			p, nh := netip.MustParsePrefix(tt.prefix), netip.MustParseAddr(tt.nextHop)
			path, err := newPath(p, nh)
			if tt.wantErr {
				if err == nil {
					t.Fatal("newPath accepted a next hop of the wrong family")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, err := routeFromPath(path)
			if err != nil {
				t.Fatal(err)
			}
			if r.Prefix != p || r.NextHop != nh || !r.Originated || r.From.IsValid() {
				t.Errorf("round trip = %+v, want prefix %s next hop %s originated", r, p, nh)
			}
		})
	}
}
