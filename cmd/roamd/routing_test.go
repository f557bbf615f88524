package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
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
		pfx("10.244.9.0/24"): {Prefix: pfx("10.244.9.0/24"), NextHop: addr("100.64.0.9"), From: addr("100.64.0.9")}, // a removed peer
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
	if plan.skipped[pfx("100.64.0.0/10")] == "" || plan.skipped[pfx("10.98.0.0/24")] == "" ||
		plan.skipped[pfx("10.244.9.0/24")] != noPeerNextHop || len(plan.skipped) != 3 {
		t.Errorf("skipped = %v, want the configured route, the one without a next hop and the one via no peer", plan.skipped)
	}

	st := withLearned(tunnel.State{Peers: peers}, plan.allowed)
	if got := fmt.Sprint(st.Peers[0].AllowedIPs); got != "[100.64.0.254/32 100.64.0.0/10 10.244.3.0/24]" {
		t.Errorf("hub's AllowedIPs with learned = %s", got)
	}
	if len(peers[0].AllowedIPs) != 2 {
		t.Errorf("withLearned modified the base state: %v", peers[0].AllowedIPs)
	}
}

// fakeKernel is a kernel table of fib's routes; it records the calls
// fibSync makes.
type fakeKernel struct {
	left   []fib.Route // what List returns
	routes map[netip.Prefix][]fib.Route
	calls  []string              // "sync N" or "update PREFIXES"
	fail   map[netip.Prefix]bool // routes to these fail to install
	err    error                 // the next call fails with this
}

func (k *fakeKernel) List() ([]fib.Route, error) { return k.left, nil }

func (k *fakeKernel) Sync(want []fib.Route) (fib.Result, error) {
	k.calls = append(k.calls, fmt.Sprintf("sync %d", len(want)))
	if err := k.takeErr(); err != nil {
		return fib.Result{}, err
	}
	k.routes = map[netip.Prefix][]fib.Route{}
	return fib.Result{}, k.set(want)
}

func (k *fakeKernel) Update(prefixes []netip.Prefix, want []fib.Route) (fib.Result, error) {
	ps := slices.Clone(prefixes)
	slices.SortFunc(ps, comparePrefix)
	k.calls = append(k.calls, fmt.Sprintf("update %v", ps))
	if err := k.takeErr(); err != nil {
		return fib.Result{}, err
	}
	if k.routes == nil {
		k.routes = map[netip.Prefix][]fib.Route{}
	}
	for _, p := range prefixes {
		delete(k.routes, p)
	}
	for _, r := range want {
		delete(k.routes, r.Prefix)
	}
	return fib.Result{}, k.set(want)
}

func (k *fakeKernel) takeErr() error {
	err := k.err
	k.err = nil
	return err
}

func (k *fakeKernel) set(want []fib.Route) error {
	var errs []*fib.RouteError
	for _, r := range want {
		if k.fail[r.Prefix] {
			errs = append(errs, &fib.RouteError{Op: "add", Route: r, Err: syscall.ENETUNREACH})
			continue
		}
		k.routes[r.Prefix] = append(k.routes[r.Prefix], r)
	}
	if len(errs) > 0 {
		return &fib.SyncError{Table: 254, Errors: errs}
	}
	return nil
}

// state is the table's routes, sorted.
func (k *fakeKernel) state() []fib.Route {
	var out []fib.Route
	for _, rs := range k.routes {
		out = append(out, rs...)
	}
	slices.SortFunc(out, compareRoute)
	return out
}

func TestFIBSyncInstalls(t *testing.T) {
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	hub := wgtypes.Key{1}
	peers := []tunnel.Peer{{Name: "hub", PublicKey: hub, AllowedIPs: []netip.Prefix{pfx("100.64.0.254/32")}}}
	overlay := map[netip.Addr]int{addr("100.64.0.254"): 0}
	k := &fakeKernel{left: []fib.Route{{Prefix: pfx("10.97.0.0/24"), Gateway: addr("198.51.100.2")}}}
	f := newFIBSync(slog.New(slog.DiscardHandler), nil, k, false)
	var tunnelApplies []string
	var tunnelErr error
	f.applyTunnel = func(m map[wgtypes.Key][]netip.Prefix) error {
		tunnelApplies = append(tunnelApplies, fmt.Sprint(m[hub]))
		return tunnelErr
	}
	f.peers = func() ([]tunnel.Peer, map[netip.Addr]int) { return peers, overlay }
	if err := f.adopt(); err != nil {
		t.Fatal(err)
	}
	check := func(step, applies, calls, kernel string) {
		t.Helper()
		if got := fmt.Sprint(tunnelApplies); got != applies {
			t.Errorf("%s: tunnel applies %s, want %s", step, got, applies)
		}
		if got := fmt.Sprint(k.calls); got != calls {
			t.Errorf("%s: kernel calls %s, want %s", step, got, calls)
		}
		if got := fmt.Sprint(k.state()); got != kernel {
			t.Errorf("%s: kernel routes %s, want %s", step, got, kernel)
		}
	}
	learned := func(prefix, nextHop string) bgp.RouteEvent {
		return bgp.RouteEvent{Route: bgp.Route{Prefix: pfx(prefix), NextHop: addr(nextHop), From: addr(nextHop)}}
	}
	withdrawn := func(prefix string) bgp.RouteEvent {
		return bgp.RouteEvent{Route: bgp.Route{Prefix: pfx(prefix)}, Withdrawn: true}
	}

	f.apply(learned("10.244.2.0/24", "100.64.0.254"))
	f.apply(learned("10.99.0.0/24", "198.51.100.2"))
	f.installWith(false) // the first install: all of it
	f.installWith(false) // nothing changed: neither the tunnel nor the kernel is touched
	check("first batch", "[[10.244.2.0/24]]", "[sync 2]", "[10.97.0.0/24 via 198.51.100.2 10.99.0.0/24 via 198.51.100.2]")
	if got := f.Installed(); len(got) != 3 || !got[0].Stale || got[2].Peer != "hub" {
		t.Errorf("Installed = %+v", got)
	}

	f.apply(withdrawn("10.99.0.0/24"))
	f.apply(learned("10.99.1.0/24", "198.51.100.3"))
	f.installWith(false)
	check("a kernel batch", "[[10.244.2.0/24]]", "[sync 2 update [10.99.0.0/24 10.99.1.0/24]]",
		"[10.97.0.0/24 via 198.51.100.2 10.99.1.0/24 via 198.51.100.3]")

	f.apply(learned("10.244.3.0/24", "100.64.0.254"))
	f.installWith(false)
	check("a tunnel batch", "[[10.244.2.0/24] [10.244.2.0/24 10.244.3.0/24]]", "[sync 2 update [10.99.0.0/24 10.99.1.0/24]]",
		"[10.97.0.0/24 via 198.51.100.2 10.99.1.0/24 via 198.51.100.3]")

	// A route that fails is tried again with the next batch, alone.
	k.calls, tunnelApplies = nil, nil
	k.fail = map[netip.Prefix]bool{pfx("10.99.2.0/24"): true}
	f.apply(learned("10.99.2.0/24", "198.51.100.3"))
	f.installWith(false)
	k.fail = nil
	f.installWith(false)
	f.installWith(false)
	check("a failed route", "[]", "[update [10.99.2.0/24] update [10.99.2.0/24]]",
		"[10.97.0.0/24 via 198.51.100.2 10.99.1.0/24 via 198.51.100.3 10.99.2.0/24 via 198.51.100.3]")

	// After any other kernel error, the next install syncs everything;
	// after a tunnel error, the tunnel gets everything again.
	k.calls = nil
	k.err, tunnelErr = errors.New("netlink: socket closed"), errors.New("wireguard: device gone")
	f.apply(withdrawn("10.99.1.0/24"))
	f.apply(withdrawn("10.244.3.0/24"))
	f.installWith(false)
	tunnelErr = nil
	f.installWith(false)
	f.installWith(false)
	check("kernel and tunnel errors", "[[10.244.2.0/24] [10.244.2.0/24]]", "[update [10.99.1.0/24] sync 2]",
		"[10.97.0.0/24 via 198.51.100.2 10.99.2.0/24 via 198.51.100.3]")

	// New peers: planned again, applied in full.
	k.calls, tunnelApplies = nil, nil
	peers = []tunnel.Peer{{Name: "hub", PublicKey: hub, AllowedIPs: []netip.Prefix{pfx("100.64.0.254/32"), pfx("10.244.2.0/24")}}}
	f.installWith(false)
	check("new peers", "[[]]", "[sync 2]", "[10.97.0.0/24 via 198.51.100.2 10.99.2.0/24 via 198.51.100.3]")

	// The previous run's route goes when its time is up.
	k.calls = nil
	f.mu.Lock()
	f.table.dropStale()
	f.mu.Unlock()
	f.installWith(false)
	check("stale dropped", "[[]]", "[update [10.97.0.0/24]]", "[10.99.2.0/24 via 198.51.100.3]")

	k.calls = nil
	if err := f.stop(); err != nil || fmt.Sprint(k.calls) != "[sync 0]" || len(k.state()) != 0 {
		t.Errorf("stop without graceful restart: err %v, kernel calls %v (want the routes removed)", err, k.calls)
	}
	f.keepOnStop = true
	if err := f.stop(); err != nil || len(k.calls) != 1 {
		t.Errorf("stop with graceful restart touched the kernel: %v", k.calls)
	}
}

// TestFIBSyncGather: updates that arrive within batchDelay of a batch's
// start are installed together; gather stops when the updates end.
func TestFIBSyncGather(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFIBSync(slog.New(slog.DiscardHandler), nil, &fakeKernel{}, false)
		ev := func(i byte) bgp.RouteEvent {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, i, 0}), 24)
			return bgp.RouteEvent{Route: bgp.Route{Prefix: p, NextHop: netip.MustParseAddr("198.51.100.2")}}
		}
		updates := make(chan bgp.RouteEvent)
		go func() {
			updates <- ev(1)
			time.Sleep(batchDelay / 2)
			updates <- ev(2)
			time.Sleep(batchDelay) // after the batch
			updates <- ev(3)
			close(updates)
		}()
		start := time.Now()
		if !f.gather(t.Context(), updates) {
			t.Fatal("gather: updates ended after the first batch")
		}
		if took, n := time.Since(start), len(f.table.best); took != batchDelay || n != 2 {
			t.Errorf("first batch: %d updates after %v, want 2 after %v", n, took, batchDelay)
		}
		if f.gather(t.Context(), updates) {
			t.Error("gather: updates closed, still open")
		}
		if n := len(f.table.best); n != 3 {
			t.Errorf("%d updates applied, want 3", n)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if f.gather(ctx, make(chan bgp.RouteEvent)) {
			t.Error("gather: ctx done, still open")
		}
	})
}

// TestFIBTableMatchesPlanFIB applies random best-path changes to a fibTable
// in batches and checks it against planFIB over the same best paths after
// each batch: the same plan, and changes that, applied to the previous
// kernel table and tunnel, give the plan's.
func TestFIBTableMatchesPlanFIB(t *testing.T) {
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	peers := []tunnel.Peer{
		{Name: "hub", PublicKey: wgtypes.Key{1}, AllowedIPs: []netip.Prefix{pfx("100.64.0.254/32"), pfx("100.64.0.0/10")}},
		{Name: "b", PublicKey: wgtypes.Key{2}, AllowedIPs: []netip.Prefix{pfx("100.64.0.2/32")}},
		{Name: "c", PublicKey: wgtypes.Key{3}, AllowedIPs: []netip.Prefix{pfx("100.64.0.3/32"), pfx("10.244.9.0/24")}},
	}
	overlay := map[netip.Addr]int{addr("100.64.0.254"): 0, addr("100.64.0.2"): 1, addr("100.64.0.3"): 2}
	var prefixes []netip.Prefix
	for i := range 10 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24))
	}
	prefixes = append(prefixes, pfx("100.64.0.0/10"), pfx("10.99.0.0/24"), pfx("10.99.1.0/24"), pfx("2001:db8:a::/48"))
	nextHops := []netip.Addr{addr("100.64.0.254"), addr("100.64.0.2"), addr("100.64.0.3"), addr("198.51.100.2"),
		addr("198.51.100.3"), {}, addr("0.0.0.0"), addr("2001:db8:1::2")}

	for seed := range uint64(200) {
		rnd := rand.New(rand.NewPCG(seed, 2))
		var stale []fib.Route
		for range rnd.IntN(6) {
			stale = append(stale, fib.Route{Prefix: prefixes[rnd.IntN(len(prefixes))], Gateway: nextHops[3+rnd.IntN(2)]})
		}
		best := map[netip.Prefix]bgp.Route{} // the reference
		tbl := newFIBTable(nil, peers, overlay, groupRoutes(stale))
		// The kernel and the tunnel as a full install leaves them, then
		// as the changes taken after each batch make them.
		kernel, allowed := groupRoutes(tbl.kernel()), tbl.allowedIPs()
		for batch := range 30 {
			for range 1 + rnd.IntN(6) {
				p := prefixes[rnd.IntN(len(prefixes))]
				ev := bgp.RouteEvent{Route: bgp.Route{Prefix: p}, Withdrawn: rnd.IntN(3) == 0}
				if !ev.Withdrawn {
					ev.Route.NextHop = nextHops[rnd.IntN(len(nextHops))]
					ev.Route.Originated = rnd.IntN(8) == 0
					best[p] = ev.Route
				} else {
					delete(best, p)
				}
				tbl.set(ev)
			}
			if rnd.IntN(10) == 0 && stale != nil {
				stale = nil
				tbl.dropStale()
			}
			plan := planFIB(best, peers, overlay, stale)
			where := fmt.Sprintf("seed %d batch %d", seed, batch)

			changedPrefixes, want := tbl.takeKernel()
			for _, p := range changedPrefixes {
				delete(kernel, p)
			}
			for _, r := range want {
				if !slices.Contains(changedPrefixes, r.Prefix) {
					t.Fatalf("%s: takeKernel wants %s, not among the changed prefixes %v", where, r, changedPrefixes)
				}
				kernel[r.Prefix] = append(kernel[r.Prefix], r)
			}
			var got []fib.Route
			for _, rs := range kernel {
				got = append(got, rs...)
			}
			slices.SortFunc(got, compareRoute)
			if fmt.Sprint(got) != fmt.Sprint(plan.kernel) {
				t.Fatalf("%s: the kernel changes give\n%v\nplanFIB wants\n%v", where, got, plan.kernel)
			}
			if got := tbl.kernel(); fmt.Sprint(got) != fmt.Sprint(plan.kernel) {
				t.Fatalf("%s: kernel()\n%v\nplanFIB\n%v", where, got, plan.kernel)
			}
			changed := tbl.takeTunnel()
			if !maps.EqualFunc(allowed, plan.allowed, slices.Equal) && !changed {
				t.Fatalf("%s: AllowedIPs changed from %v to %v, takeTunnel says not", where, allowed, plan.allowed)
			}
			allowed = plan.allowed
			if got := tbl.allowedIPs(); !maps.EqualFunc(got, plan.allowed, slices.Equal) {
				t.Fatalf("%s: allowedIPs %v, planFIB %v", where, got, plan.allowed)
			}
			routes, skipped := tbl.routes()
			if fmt.Sprint(routes) != fmt.Sprint(plan.routes) || !maps.Equal(skipped, plan.skipped) {
				t.Fatalf("%s: routes %v skipped %v\nplanFIB %v skipped %v", where, routes, skipped, plan.routes, plan.skipped)
			}
			tun := 0
			for _, r := range plan.routes {
				if r.Peer != "" {
					tun++
				}
			}
			if tbl.tunnel != tun || tbl.gateway != len(plan.routes)-tun {
				t.Fatalf("%s: counts tunnel %d gateway %d, planFIB %d and %d", where, tbl.tunnel, tbl.gateway, tun, len(plan.routes)-tun)
			}
		}
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
