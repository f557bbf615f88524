package probe

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the user plus system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmRSS is this process's resident set size in bytes (VmRSS).
func vmRSS(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v) // "12345 kB"
			kb, err := strconv.ParseUint(string(f[0]), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// linkTotals sums the probe counters, up links and flaps of links.
func linkTotals(ls []Link) (sent, replies, flaps uint64, up int) {
	for _, l := range ls {
		sent += l.Sent
		replies += l.Replies
		flaps += l.Flaps
		if l.State == Up {
			up++
		}
	}
	return sent, replies, flaps, up
}

// BenchmarkProbing1000Peers measures the CPU and memory of probing 1 000
// peers at 10 probes/s each (profile fast) over real UDP on loopback: 1 000
// Reflectors, each on its own address 127.0.x.y (all of 127.0.0.0/8 is
// loopback on Linux) and a kernel-chosen port, and one Prober on 127.0.0.1
// with the 1 000 as targets, all in this process, so the CPU figure counts
// the sender and all the reflectors. After every link is up (at most 30 s)
// it measures for 10 s: process CPU (getrusage, user + system) as a share of
// one core, probes and replies per second, heap in use, RSS and goroutines.
// Run with: go test -run '^$' -bench Probing1000Peers -benchtime 1x -v ./probe/
func BenchmarkProbing1000Peers(b *testing.B) {
	const peers = 1000
	const warmLimit, span = 30 * time.Second, 10 * time.Second
	for range b.N {
		probe1000(b, peers, warmLimit, span)
	}
}

func probe1000(b *testing.B, peers int, warmLimit, span time.Duration) {
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, peers+1)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Errorf("Run: %v", err)
		}
		// Every goroutine started here has exited once Run returned; give
		// the runtime a moment to reap them before counting.
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			b.Errorf("%d goroutines left running, %d before", n, goroutines)
		}
	}
	b.Cleanup(stop)

	refls := make([]*Reflector, peers)
	for i := range refls {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(10 + i/250), byte(1 + i%250)}), 0)
		r, err := NewReflector(ReflectorConfig{Addr: addr}, nil)
		if err != nil {
			b.Fatal(err)
		}
		refls[i] = r
		wg.Go(func() {
			if err := r.Run(ctx); err != nil {
				errs <- err
			}
		})
	}
	targets := make([]Target, peers)
	for i, r := range refls {
		select {
		case <-r.Ready():
		case err := <-errs:
			b.Fatalf("reflector %d: %v", i, err)
		case <-time.After(10 * time.Second):
			b.Fatalf("reflector %d not listening after 10 s", i)
		}
		targets[i] = Target{Name: fmt.Sprintf("peer%04d", i), Addr: r.LocalAddr(), Profile: "fast", Config: Config{Interval: Profiles["fast"]}}
	}
	p, err := NewProber(ProberConfig{Local: netip.MustParseAddrPort("127.0.0.1:0"), Seed: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.SetTargets(targets); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			errs <- err
		}
	})

	up := 0
	for deadline := start.Add(warmLimit); ; {
		time.Sleep(200 * time.Millisecond)
		_, _, _, up = linkTotals(p.Links())
		if up == peers {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d links up after %v", up, peers, warmLimit)
		}
	}
	warm := time.Since(start)

	reflected := func() (n uint64) {
		for _, r := range refls {
			n += r.Stats().Reflected
		}
		return n
	}
	sent0, replies0, flaps0, _ := linkTotals(p.Links())
	refl0, cpu0, t0 := reflected(), cpuTime(b), time.Now()
	time.Sleep(span)
	cpu1, t1 := cpuTime(b), time.Now()
	sent1, replies1, flaps1, upEnd := linkTotals(p.Links())
	refl1 := reflected()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, nGoroutines, stats := vmRSS(b), runtime.NumGoroutine(), p.Stats()
	stop()

	wall := t1.Sub(t0).Seconds()
	pct := 100 * (cpu1 - cpu0).Seconds() / wall
	sentRate := float64(sent1-sent0) / wall
	replyRate := float64(replies1-replies0) / wall
	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
	b.ReportMetric(pct, "pct_core")
	b.ReportMetric(sentRate, "probes/s")
	b.ReportMetric(replyRate, "replies/s")
	b.ReportMetric(float64(refl1-refl0)/wall, "reflected/s")
	b.ReportMetric(1e6*(cpu1-cpu0).Seconds()/float64(sent1-sent0), "us_cpu/probe")
	b.ReportMetric(mib(ms.HeapInuse), "MiB_heap_inuse")
	b.ReportMetric(mib(rss), "MiB_rss")
	b.ReportMetric(float64(nGoroutines), "goroutines")
	b.ReportMetric(float64(flaps1-flaps0), "flaps")
	b.Logf("1 000 peers at 10 probes/s (fast), sender and reflectors in one process, UDP loopback, GOMAXPROCS %d:\n"+
		"| all up after | CPU (user+sys) | probes/s | replies/s | reflected/s | CPU per probe | heap in use | RSS | goroutines | flaps | up at end | prober drops |\n"+
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"+
		"| %.1f s | %.1f %% of one core | %.0f | %.0f | %.0f | %.1f µs | %.1f MiB | %.1f MiB | %d | %d | %d | %+v |",
		runtime.GOMAXPROCS(0), warm.Seconds(), pct, sentRate, replyRate, float64(refl1-refl0)/wall,
		1e6*(cpu1-cpu0).Seconds()/float64(sent1-sent0), mib(ms.HeapInuse), mib(rss), nGoroutines,
		flaps1-flaps0, upEnd, stats)
	if flaps1 != flaps0 || upEnd != peers {
		b.Errorf("%d flaps while measuring, %d of %d up at the end", flaps1-flaps0, upEnd, peers)
	}
}
