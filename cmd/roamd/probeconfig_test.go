package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/probe"
)

func TestProbeConfig(t *testing.T) {
	peerC := "\n  - name: c\n    public_key: " + keyC + "\n    addresses: [\"fd00:64::3/128\"]\n"
	for _, tc := range []struct {
		name    string
		extra   string // appended to goodConfig's top level
		peer    string // appended to peer b
		want    []probe.Target
		wantErr string
	}{
		{name: "defaults: every peer with an IPv4 overlay address, default profile, port 862",
			want: []probe.Target{{Name: "b", Addr: mustAddrPort("100.64.0.2:862"), Profile: "default", Config: probe.Config{Interval: 250 * time.Millisecond}}}},
		{name: "profile and port", extra: "probe: {profile: fast, port: 8862}\n",
			want: []probe.Target{{Name: "b", Addr: mustAddrPort("100.64.0.2:8862"), Profile: "fast", Config: probe.Config{Interval: 100 * time.Millisecond}}}},
		{name: "per-peer profile", peer: "    probe: metered\n",
			want: []probe.Target{{Name: "b", Addr: mustAddrPort("100.64.0.2:862"), Profile: "metered", Config: probe.Config{Interval: 2 * time.Second}}}},
		{name: "peer off", peer: "    probe: off\n"},
		{name: "all off", extra: "probe: {enabled: false}\n"},
		{name: "bad profile", extra: "probe: {profile: turbo}\n", wantErr: `probe.profile: "turbo": want fast, default or metered`},
		{name: "bad peer profile", peer: "    probe: turbo\n", wantErr: `peers[0].probe: "turbo": want fast, default, metered or off`},
		{name: "bad port", extra: "probe: {port: 70000}\n", wantErr: "probe.port: 70000 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig([]byte(goodConfig + tc.peer + strings.TrimPrefix(peerC, "") + tc.extra))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := probeTargets(c)
			if len(got) != len(tc.want) {
				t.Fatalf("targets %+v, want %+v (c has only an IPv6 address: not probed from IPv4)", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("target %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
