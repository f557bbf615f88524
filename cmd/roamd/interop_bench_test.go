package main

import (
	"context"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// BenchmarkInteropPrefixes: gobgpd originates 10 000 prefixes (/32s in
// 10.98.0.0/16, like the service addresses a Kubernetes BGP speaker
// announces) to roamd on edge and, in the same run, to BIRD 2 on bird; both
// install them in their node's kernel. Reported side by side:
//   - s_install_*: from the first announcement until the kernel table holds
//     exactly the 10 000, each via gobgpd (a raw netlink route dump inside
//     the node every 20 ms; a sample's time is the end of its dump);
//   - MiB_rss_*: resident memory (VmRSS) afterwards;
//   - churn: for 30 s, each second 1 000 prefixes are withdrawn and the 1 000
//     withdrawn the second before are announced again; cpu_s_churn_* is the
//     user+system time each daemon used from the churn's start until its
//     kernel matched, s_lag_* how long after the last change it took until
//     its kernel held exactly gobgpd's 9 000.
//
// install_ratio, rss_ratio and churn_cpu_ratio are roamd/BIRD: above 1,
// roamd is slower, bigger or busier. Both daemons, gobgpd and the sampling
// share the machine's CPUs; the sampling's own CPU time is logged.
// Run with: go test -run '^$' -bench InteropPrefixes -benchtime 1x ./cmd/roamd
func BenchmarkInteropPrefixes(b *testing.B) {
	l := ixDeploy(b)
	ixWaitGoBGPSessions(l, 20*time.Second)
	const n, block = 10000, 1000
	within := netip.MustParsePrefix("10.98.0.0/16")
	prefixes := ixPrefixes(netip.MustParsePrefix("10.98.1.0/32"), n, within)
	c := ixGoBGPD(b, l.gobgp.netns())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// roamd is measured only if it runs (the other figures still come out).
	daemons := map[string]string{"bird": l.bird.netns()} // daemon: its node's network namespace
	pids := map[string]int{"bird": pidOf(l.file, "bird", "bird")}
	if pid := roamdPID(l.file, "edge"); pid != 0 {
		daemons["roamd"], pids["roamd"] = l.edge.netns(), pid
	} else {
		b.Errorf("no roamd runs in edge; measuring BIRD alone. roamd's log:\n%s", ixTail(l.roamdLogs(), 20))
	}
	if pids["bird"] == 0 {
		b.Fatalf("no bird runs in bird:\n%s", ixTail(l.bird.cmdLog(), 20))
	}

	for range b.N {
		// Install.
		start := time.Now()
		if err := ixAddPaths(ctx, c, ixPaths(prefixes, ixGoBGPUnderlay, false), block); err != nil {
			b.Fatalf("gobgpd AddPathStream: %v", err)
		}
		b.Logf("gobgpd took %v to accept the %d announcements over gRPC", time.Since(start).Round(time.Millisecond), n)
		took := ixWaitKernels(b, daemons, ixSet(prefixes), within, start, 2*time.Minute)
		rss := map[string]float64{}
		for name, pid := range pids {
			rss[name] = rssMiB(b, pid)
			b.ReportMetric(rss[name], "MiB_rss_"+name)
			if d, ok := took[name]; ok {
				b.ReportMetric(d.Seconds(), "s_install_"+name)
			}
			b.Logf("install %s: %v, RSS %.1f MiB", name, took[name], rss[name])
		}
		if _, ok := pids["roamd"]; ok {
			b.ReportMetric(rss["roamd"]/rss["bird"], "rss_ratio")
			if took["roamd"] > 0 && took["bird"] > 0 {
				b.ReportMetric(took["roamd"].Seconds()/took["bird"].Seconds(), "install_ratio")
			}
		}

		// Churn: second i withdraws block i%10 and announces block (i-1)%10.
		const seconds = 30
		cpu0 := map[string]int64{}
		for name, pid := range pids {
			cpu0[name] = cpuTicks(b, pid)
		}
		churnStart := time.Now()
		for i := range seconds {
			time.Sleep(time.Until(churnStart.Add(time.Duration(i) * time.Second)))
			k := i % (n / block)
			paths := ixPaths(prefixes[k*block:(k+1)*block], ixGoBGPUnderlay, true)
			if i > 0 {
				j := (i - 1) % (n / block)
				paths = append(paths, ixPaths(prefixes[j*block:(j+1)*block], ixGoBGPUnderlay, false)...)
			}
			if err := ixAddPaths(ctx, c, paths, len(paths)); err != nil {
				b.Fatalf("churn second %d: gobgpd AddPathStream: %v", i, err)
			}
		}
		lastChange := time.Now()
		last := (seconds - 1) % (n / block)
		want := ixSet(append(append([]netip.Prefix(nil), prefixes[:last*block]...), prefixes[(last+1)*block:]...))
		lag := ixWaitKernels(b, daemons, want, within, lastChange, time.Minute)
		cpu := map[string]float64{}
		for name, pid := range pids {
			cpu[name] = float64(cpuTicks(b, pid)-cpu0[name]) / 100 // USER_HZ
			b.ReportMetric(cpu[name], "cpu_s_churn_"+name)
			if lg, ok := lag[name]; ok {
				b.ReportMetric(lg.Seconds(), "s_lag_"+name)
			}
			b.Logf("churn %s: %.2f CPU s over %v, lag after the last change %v", name, cpu[name], time.Since(churnStart).Round(time.Millisecond), lag[name])
		}

		if _, ok := pids["roamd"]; ok {
			b.ReportMetric(cpu["roamd"]/cpu["bird"], "churn_cpu_ratio")
		}

		// Withdraw everything, so that a further iteration starts empty.
		if err := ixAddPaths(ctx, c, ixPaths(prefixes, ixGoBGPUnderlay, true), block); err != nil {
			b.Fatalf("gobgpd withdraw: %v", err)
		}
		ixWaitKernels(b, daemons, nil, within, time.Now(), time.Minute)
	}
}

// ixWaitGoBGPSessions waits until gobgpd's sessions with roamd and with BIRD
// are Established.
func ixWaitGoBGPSessions(l *ixLab, limit time.Duration) {
	l.tb.Helper()
	ok, seen := ixPoll(limit, func() (bool, string) {
		gb := ixGoBGP(l.gobgp, "neighbor")
		return ixEstablished(gb, ixEdgeUnderlay) && ixEstablished(gb, ixBirdUnderlay), gb
	})
	if !ok {
		l.tb.Errorf("want gobgpd's sessions with roamd (%s) and BIRD (%s) Established within %v; gobgp neighbor in gobgp:\n%s\nroamd's log:\n%s",
			ixEdgeUnderlay, ixBirdUnderlay, limit, seen, ixTail(l.roamdLogs(), 20))
		if !ixEstablished(seen, ixBirdUnderlay) {
			l.tb.FailNow()
		}
	}
}

func ixSet(ps []netip.Prefix) map[netip.Prefix]bool {
	m := make(map[netip.Prefix]bool, len(ps))
	for _, p := range ps {
		m[p] = true
	}
	return m
}

// ixRouteProto is the protocol each daemon installs its routes with.
var ixRouteProto = map[string]uint8{"roamd": ixProtoRoam, "bird": ixProtoBird}

// ixWaitKernels samples each daemon's kernel routes inside within every 10 ms
// until their set equals want (via gobgpd), and returns how long after since
// each got there. A daemon that does not within limit fails the benchmark
// (the others are still waited for and reported).
func ixWaitKernels(b *testing.B, daemons map[string]string, want map[netip.Prefix]bool, within netip.Prefix, since time.Time, limit time.Duration) map[string]time.Duration {
	b.Helper()
	gw := netip.MustParseAddr(ixGoBGPUnderlay)
	took := map[string]time.Duration{}
	have := map[string]int{}
	var dumps int
	var dumping time.Duration
	cpu0 := ixSelfCPU()
	deadline := time.Now().Add(limit)
	for len(took) < len(daemons) && time.Now().Before(deadline) {
		for name, ns := range daemons {
			if _, done := took[name]; done {
				continue
			}
			t0 := time.Now()
			n, exact := 0, true
			err := ixKernelRoutes(ns, ixRouteProto[name], within, func(p netip.Prefix, g netip.Addr) {
				n++
				exact = exact && want[p] && g == gw
			})
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			now := time.Now() // the end of the dump: an upper bound
			dumps, dumping = dumps+1, dumping+now.Sub(t0)
			have[name] = n
			if exact && n == len(want) {
				took[name] = now.Sub(since)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if dumps > 0 {
		b.Logf("sampling: %d route dumps, %v each on average; the benchmark process used %.2f CPU s meanwhile",
			dumps, (dumping / time.Duration(dumps)).Round(10*time.Microsecond), ixSelfCPU()-cpu0)
	}
	for name := range daemons {
		if _, ok := took[name]; !ok {
			b.Errorf("%s: want its kernel to hold exactly the %d routes gobgpd announces (via %s) within %v; it has %d of its own in %s",
				name, len(want), gw, limit, have[name], within)
		}
	}
	return took
}

// ixSelfCPU is the user+system time this process has used, in seconds.
func ixSelfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
