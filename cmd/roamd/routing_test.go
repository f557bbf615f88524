package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/bgp/fib"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestPlanFIB(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	hub, direct := wgtypes.Key{1}, wgtypes.Key{2}
	peers := []tunnel.Peer{
		{Name: "hub", PublicKey: hub, AllowedIPs: []netip.Prefix{pfx("100.64.0.254/32"), pfx("100.64.0.0/10")}},
		{Name: "b", PublicKey: direct, AllowedIPs: []netip.Prefix{pfx("100.64.0.2/32")}},
	}
	overlay := map[netip.Addr]int{addr("100.64.0.254"): 0, addr("100.64.0.2"): 1}
	best := map[netip.Prefix]bgp.Route{
		pfx("10.244.1.0/24"): {Prefix: pfx("10.244.1.0/24"), NextHop: addr("100.64.0.1"), Originated: true},
		pfx("10.244.2.0/24"): {Prefix: pfx("10.244.2.0/24"), NextHop: addr("100.64.0.2"), From: addr("100.64.0.2")},
		pfx("10.244.3.0/24"): {Prefix: pfx("10.244.3.0/24"), NextHop: addr("100.64.0.254"), From: addr("100.64.0.254")},
		pfx("10.99.0.0/24"):  {Prefix: pfx("10.99.0.0/24"), NextHop: addr("198.51.100.2"), From: addr("198.51.100.2")},
		pfx("100.64.0.0/10"): {Prefix: pfx("100.64.0.0/10"), NextHop: addr("100.64.0.254"), From: addr("100.64.0.254")},
		pfx("10.98.0.0/24"):  {Prefix: pfx("10.98.0.0/24"), From: addr("198.51.100.3")},
	}
	stale := []fib.Route{
		{Prefix: pfx("10.99.0.0/24"), Gateway: addr("198.51.100.9")}, // confirmed by a best path: replaced
		{Prefix: pfx("10.97.0.0/24"), Gateway: addr("198.51.100.2")}, // not confirmed yet: kept
	}
	plan := planFIB(best, peers, overlay, stale)

	if got := fmt.Sprint(plan.allowed[hub]); got != "[10.244.3.0/24]" {
		t.Errorf("hub's learned AllowedIPs = %s, want [10.244.3.0/24]", got)
	}
	if got := fmt.Sprint(plan.allowed[direct]); got != "[10.244.2.0/24]" {
		t.Errorf("b's learned AllowedIPs = %s, want [10.244.2.0/24]", got)
	}
	if got, want := fmt.Sprint(plan.kernel), "[10.97.0.0/24 via 198.51.100.2 10.99.0.0/24 via 198.51.100.2]"; got != want {
		t.Errorf("kernel routes = %s, want %s", got, want)
	}
	if len(plan.routes) != 4 || !plan.routes[0].Stale || plan.routes[1].Stale || plan.routes[2].Peer != "b" || plan.routes[3].Peer != "hub" {
		t.Errorf("installed = %+v", plan.routes)
	}
	if plan.skipped[pfx("100.64.0.0/10")] == "" || plan.skipped[pfx("10.98.0.0/24")] == "" || len(plan.skipped) != 2 {
		t.Errorf("skipped = %v, want the configured route and the one without a next hop", plan.skipped)
	}

	st := withLearned(tunnel.State{Peers: peers}, plan.allowed)
	if got := fmt.Sprint(st.Peers[0].AllowedIPs); got != "[100.64.0.254/32 100.64.0.0/10 10.244.3.0/24]" {
		t.Errorf("hub's AllowedIPs with learned = %s", got)
	}
	if len(peers[0].AllowedIPs) != 2 {
		t.Errorf("withLearned modified the base state: %v", peers[0].AllowedIPs)
	}
}
