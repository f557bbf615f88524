package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

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

// fakeKernel records the route sets fibSync asks for.
type fakeKernel struct {
	syncs [][]fib.Route
	left  []fib.Route
}

func (k *fakeKernel) List() ([]fib.Route, error) { return k.left, nil }
func (k *fakeKernel) Sync(want []fib.Route) (fib.Result, error) {
	k.syncs = append(k.syncs, append([]fib.Route(nil), want...))
	return fib.Result{}, nil
}

func TestFIBSyncInstalls(t *testing.T) {
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	hub := wgtypes.Key{1}
	peers := []tunnel.Peer{{Name: "hub", PublicKey: hub, AllowedIPs: []netip.Prefix{pfx("100.64.0.254/32")}}}
	overlay := map[netip.Addr]int{addr("100.64.0.254"): 0}
	k := &fakeKernel{left: []fib.Route{{Prefix: pfx("10.97.0.0/24"), Gateway: addr("198.51.100.2")}}}
	f := newFIBSync(slog.New(slog.DiscardHandler), nil, k, false)
	var tunnelApplies []string
	f.applyTunnel = func(m map[wgtypes.Key][]netip.Prefix) error {
		tunnelApplies = append(tunnelApplies, fmt.Sprint(m[hub]))
		return nil
	}
	f.peers = func() ([]tunnel.Peer, map[netip.Addr]int) { return peers, overlay }
	if err := f.adopt(); err != nil {
		t.Fatal(err)
	}

	f.apply(bgp.RouteEvent{Route: bgp.Route{Prefix: pfx("10.244.2.0/24"), NextHop: addr("100.64.0.254"), From: addr("100.64.0.254")}})
	f.apply(bgp.RouteEvent{Route: bgp.Route{Prefix: pfx("10.99.0.0/24"), NextHop: addr("198.51.100.2"), From: addr("198.51.100.2")}})
	f.installWith(false)
	f.installWith(false) // nothing changed: neither the tunnel nor the kernel is touched
	if got := fmt.Sprint(tunnelApplies); got != "[[10.244.2.0/24]]" {
		t.Errorf("tunnel applies = %s, want one with 10.244.2.0/24", got)
	}
	if got := fmt.Sprint(k.syncs); got != "[[10.97.0.0/24 via 198.51.100.2 10.99.0.0/24 via 198.51.100.2]]" {
		t.Errorf("kernel syncs = %s, want one with the stale and the learned route", got)
	}
	if got := f.Installed(); len(got) != 3 || !got[0].Stale {
		t.Errorf("Installed = %+v", got)
	}

	f.apply(bgp.RouteEvent{Route: bgp.Route{Prefix: pfx("10.99.0.0/24")}, Withdrawn: true})
	f.installWith(false)
	if len(tunnelApplies) != 1 || len(k.syncs) != 2 || fmt.Sprint(k.syncs[1]) != "[10.97.0.0/24 via 198.51.100.2]" {
		t.Errorf("after a withdraw: tunnel applies %v, kernel syncs %v", tunnelApplies, k.syncs)
	}
	if err := f.stop(); err != nil || len(k.syncs) != 3 || len(k.syncs[2]) != 0 {
		t.Errorf("stop without graceful restart: err %v, kernel syncs %v (want the routes removed)", err, k.syncs)
	}
	f.keepOnStop = true
	if err := f.stop(); err != nil || len(k.syncs) != 3 {
		t.Errorf("stop with graceful restart touched the kernel: %v", k.syncs)
	}
}

func TestRestartMarker(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if restarting(dir, now) {
		t.Error("restarting without a marker")
	}
	if err := markRestart(dir, now); err != nil {
		t.Fatal(err)
	}
	if !restarting(dir, now.Add(10*time.Second)) {
		t.Error("not restarting 10 s after a graceful shutdown")
	}
	if restarting(dir, now.Add(10*time.Second)) {
		t.Error("the marker was not consumed")
	}
	markRestart(dir, now)
	if restarting(dir, now.Add(restartWindow+time.Second)) {
		t.Error("restarting long after the shutdown")
	}
}
