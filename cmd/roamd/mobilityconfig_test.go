package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestMobilityConfig(t *testing.T) {
	for _, tc := range []struct {
		name       string
		extra      string // appended to goodConfig's top level
		peer       string // appended to peer b
		wantDirect bool
		wantPort   int
		wantErr    string
	}{
		{name: "no hub peer: no direct paths", wantPort: 7471},
		{name: "a hub peer: direct paths on", peer: "    hub: true\n", wantDirect: true, wantPort: 7471},
		{name: "direct off by hand", peer: "    hub: true\n", extra: "mobility: {direct: false}\n", wantPort: 7471},
		{name: "signal port", peer: "    hub: true\n", extra: "mobility: {signal_port: 9000}\n", wantDirect: true, wantPort: 9000},
		{name: "a hub has no direct paths", extra: "role: hub\nmobility: {direct: true}\n",
			wantErr: "mobility.direct: a hub has no direct paths to find"},
		{name: "direct without a hub", extra: "mobility: {direct: true}\n",
			wantErr: "mobility.direct: true, but no peer has hub: true"},
		{name: "direct on a kernel device", peer: "    hub: true\n", extra: "tunnel: {mode: kernel}\n",
			wantErr: "mobility.direct: needs tunnel.mode userspace or auto"},
		{name: "kernel device without direct paths", extra: "tunnel: {mode: kernel}\n", wantPort: 7471},
		{name: "bad signal port", extra: "mobility: {signal_port: 70000}\n", wantErr: "mobility.signal_port: 70000 out of range 1..65535"},
		{name: "signal port is the probe port", extra: "mobility: {signal_port: 862}\n", wantErr: "mobility.signal_port: 862 is also probe.port"},
		{name: "bad interface pattern", extra: "mobility: {ignore_interfaces: [\"wl[\"]}\n", wantErr: `mobility.ignore_interfaces[0]: "wl[" is not a valid pattern`},
		{name: "unknown field", extra: "mobility: {turbo: true}\n", wantErr: "field turbo not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig([]byte(goodConfig + tc.peer + tc.extra))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *c.Mobility.Direct != tc.wantDirect || c.Mobility.SignalPort != tc.wantPort || !*c.Mobility.Watch {
				t.Errorf("mobility %+v (direct %v): want direct %v, port %d, watch on", c.Mobility, *c.Mobility.Direct, tc.wantDirect, tc.wantPort)
			}
		})
	}
}

func TestUnderlayFilters(t *testing.T) {
	c, err := parseConfig([]byte(goodConfig + "    hub: true\nbgp: {prefixes: [10.244.1.0/24]}\nmobility: {ignore_interfaces: [\"wg*\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"roam0": true, "lo": true, "cni0": true, "veth12ab": true, "docker0": true, "wg0": true,
		"eth0": false, "wlan0": false, "wwan0": false, "pod": false,
	} {
		if got := c.ignoredInterface(name); got != want {
			t.Errorf("ignoredInterface(%q) = %v, want %v", name, got, want)
		}
	}
	for addr, want := range map[string]bool{
		"192.0.2.2": true, "203.0.113.7": true, "2001:db8::1": true,
		"100.64.0.1":  false, // this node's overlay address
		"10.244.1.1":  false, // inside its own pod prefix
		"127.0.0.1":   false,
		"fe80::1":     false,
		"169.254.1.1": false,
	} {
		if got := c.underlayAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("underlayAddr(%s) = %v, want %v", addr, got, want)
		}
	}
	if hubs := c.hubPeers(); len(hubs) != 1 || hubs[0].name != "b" {
		t.Errorf("hubPeers = %+v, want b", hubs)
	}
	if got := hubUnderlay(c); len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("hubUnderlay = %v, want [192.0.2.2]", got)
	}
}
