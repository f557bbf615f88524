package emulator

import (
	"testing"
	"time"
)

// TestSleeperNeverEarly checks that compensating nanosleep's overshoot
// never makes a departure early, across the nap, spin and mixed ranges.
func TestSleeperNeverEarly(t *testing.T) {
	s := newSleeper()
	for _, d := range []time.Duration{10 * time.Microsecond, 80 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		var late time.Duration
		for range 20 {
			start := time.Now()
			s.sleep(d)
			elapsed := time.Since(start)
			if elapsed < d {
				t.Fatalf("sleep(%v) returned after %v", d, elapsed)
			}
			late += elapsed - d
		}
		t.Logf("sleep(%v): %v late on average, overshoot estimate %v", d, late/20, s.overshoot)
	}
}
