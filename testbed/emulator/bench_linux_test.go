package emulator

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkDelayAt10kpps measures requested vs measured one-way delay at
// 10 000 datagrams/s (paced, 10 000 per delay) through the userspace
// emulator, and the share delivered. Figures are reported as metrics:
// ms_mean/ms_p99 are the measured delay minus the unimpaired baseline.
// Run with: make bench (or go test -run '^$' -bench DelayAt10kpps -benchtime 1x ./testbed/emulator)
func BenchmarkDelayAt10kpps(b *testing.B) {
	l := newLab(b)
	for range b.N {
		l.apply(b, Impairment{})
		base := sendUDP(b, l.a, l.b, 2000, 10_000)
		b.ReportMetric(float64(base.mean())/1e6, "ms_baseline")
		for _, d := range []time.Duration{5 * ms1, 20 * ms1, 50 * ms1, 100 * ms1} {
			l.apply(b, Impairment{Delay: d})
			pid := emulatorPID(b, l)
			c0, t0 := cpuSeconds(b, pid), time.Now()
			r := sendUDP(b, l.a, l.b, 10_000, 10_000)
			b.ReportMetric(100*(cpuSeconds(b, pid)-c0)/time.Since(t0).Seconds(), fmt.Sprintf("pct_core_emulator_for_%v", d))
			b.Logf("delay %v at 10k/s: %v", d, r)
			b.ReportMetric(float64(r.mean()-base.mean())/1e6, fmt.Sprintf("ms_mean_for_%v", d))
			b.ReportMetric(float64(r.percentile(99)-base.mean())/1e6, fmt.Sprintf("ms_p99_for_%v", d))
			b.ReportMetric(100*float64(r.received)/float64(r.sent), fmt.Sprintf("pct_delivered_for_%v", d))
			b.ReportMetric(float64(r.sent)/r.elapsed.Seconds(), fmt.Sprintf("pps_sent_for_%v", d))
		}
	}
}

// emulatorPID is the pid of the emulator serving node a's eth1.
func emulatorPID(b *testing.B, l *lab) int {
	data, err := os.ReadFile(filesFor(l.stateDir, "eth1").pid)
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

// cpuSeconds is the user+system CPU time pid has used.
func cpuSeconds(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// BenchmarkLoss measures requested vs measured loss over 5 000 paced datagrams.
func BenchmarkLoss(b *testing.B) {
	l := newLab(b)
	for range b.N {
		for _, p := range []float64{1, 5, 10, 20, 50} {
			l.apply(b, Impairment{Loss: p})
			r := sendUDP(b, l.a, l.b, 5000, 5000)
			b.ReportMetric(r.lossPercent(), fmt.Sprintf("pct_lost_for_%g%%", p))
		}
	}
}
