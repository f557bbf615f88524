package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// BenchmarkEmulatorAccuracy measures the link emulator as a user would, with
// roamlab and ping across the pair lab: requested vs measured delay (200
// pings at 100/s; mean RTT minus the unimpaired baseline, delay set on one
// end) and loss over 1 000 pings. ping cannot pace 10 000/s with replies
// outstanding: testbed/emulator's BenchmarkDelayAt10kpps measures that rate.
// Run with: make bench (or go test -run '^$' -bench EmulatorAccuracy -benchtime 1x ./cmd/roamlab)
func BenchmarkEmulatorAccuracy(b *testing.B) {
	file := labtest.LabFile("pair")
	labtest.Deploy(b, file)
	target := "198.51.100.2"
	set := func(args ...string) {
		labtest.MustRun(b, append([]string{"tools", "netem", "set", "-t", file, "-n", "a", "-i", "eth1"}, args...)...)
	}
	ping := func(args ...string) (int, float64) {
		return pingStats(b, file, "a", append(args, target)...)
	}
	for range b.N {
		set()
		_, base := ping("-c", "200", "-i", "0.01")
		for _, d := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond} {
			set("--delay", d.String())
			got, avg := ping("-c", "200", "-i", "0.01")
			b.ReportMetric(avg-base, fmt.Sprintf("ms_measured_for_%s", d))
			if got != 200 {
				b.Errorf("delay %s: %d/200 replies", d, got)
			}
		}
		for _, loss := range []float64{1, 5, 10, 20, 50} {
			set("--loss", fmt.Sprint(loss))
			got, _ := ping("-c", "1000", "-i", "0.001", "-W", "1")
			b.ReportMetric(100*float64(1000-got)/1000, fmt.Sprintf("pct_lost_for_%g%%", loss))
		}
		set()
	}
}
