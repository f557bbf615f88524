package probe

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMissThreshold(t *testing.T) {
	tests := []struct {
		name   string
		loss   float64
		window int
		target float64
		want   int
	}{
		{name: "no loss", loss: 0, window: 100, target: 1e-6, want: MinMisses},
		{name: "1%", loss: 0.01, window: 100, target: 1e-6, want: 4},
		// 0.1^7 * 4 = 4e-7; 0.1^6 * 5 = 5e-6.
		{name: "10% small window", loss: 0.1, window: 10, target: 1e-6, want: 7},
		// 0.1^8 * 93 = 9.3e-7; 0.1^7 * 94 = 9.4e-6.
		{name: "10%", loss: 0.1, window: 100, target: 1e-6, want: 8},
		// 0.2^12 * 89 = 3.6e-7; 0.2^11 * 90 = 1.8e-6.
		{name: "20%", loss: 0.2, window: 100, target: 1e-6, want: 12},
		// 0.5^27 * 74 = 5.5e-7; 0.5^26 * 75 = 1.1e-6.
		{name: "50%", loss: 0.5, window: 100, target: 1e-6, want: 27},
		{name: "total loss", loss: 1, window: 100, target: 1e-6, want: 100},
		{name: "NaN as none", loss: math.NaN(), window: 100, target: 1e-6, want: MinMisses},
		{name: "negative as none", loss: -0.1, window: 100, target: 1e-6, want: MinMisses},
		{name: "tiny window", loss: 0.5, window: 2, target: 1e-6, want: MinMisses},
		{name: "zero target", loss: 0.1, window: 50, target: 0, want: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MissThreshold(tt.loss, tt.window, tt.target); got != tt.want {
				t.Errorf("MissThreshold(%v, %d, %v) = %d, want %d", tt.loss, tt.window, tt.target, got, tt.want)
			}
		})
	}
}

// runChance is the exact probability that n independent probes, each lost
// with probability p, contain a run of at least k losses: a walk over the
// length of the current run.
func runChance(p float64, n, k int) float64 {
	state := make([]float64, k) // state[j]: no run of k yet, current run j
	state[0] = 1
	hit := 0.0
	for range n {
		next := make([]float64, k)
		for j, q := range state {
			next[0] += q * (1 - p)
			if j+1 == k {
				hit += q * p
			} else {
				next[j+1] += q * p
			}
		}
		state = next
	}
	return hit
}

// runChanceBrute enumerates every loss pattern of n probes.
func runChanceBrute(p float64, n, k int) float64 {
	total := 0.0
	for pat := 0; pat < 1<<n; pat++ {
		prob, run, longest := 1.0, 0, 0
		for i := range n {
			if pat>>i&1 == 1 {
				prob *= p
				run++
				longest = max(longest, run)
			} else {
				prob *= 1 - p
				run = 0
			}
		}
		if longest >= k {
			total += prob
		}
	}
	return total
}

func TestRunChanceAgainstBruteForce(t *testing.T) {
	for _, p := range []float64{0.05, 0.2, 0.5, 0.9} {
		for n := 1; n <= 14; n++ {
			for k := 1; k <= n+1; k++ {
				got, want := runChance(p, n, k), runChanceBrute(p, n, k)
				if math.Abs(got-want) > 1e-12 {
					t.Fatalf("runChance(%v, %d, %d) = %v, brute force %v", p, n, k, got, want)
				}
			}
		}
	}
}

// The threshold keeps the exact chance below the target, and is the smallest
// k whose union bound does.
func TestMissThresholdAgainstExact(t *testing.T) {
	for _, loss := range []float64{0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7} {
		for _, n := range []int{5, 10, 16, 100, 256, 1024} {
			for _, target := range []float64{1e-3, 1e-6, 1e-9} {
				k := MissThreshold(loss, n, target)
				if k < MinMisses {
					t.Fatalf("MissThreshold(%v, %d, %v) = %d < %d", loss, n, target, k, MinMisses)
				}
				if k < n {
					if c := runChance(loss, n, k); c >= target {
						t.Errorf("MissThreshold(%v, %d, %v) = %d: exact chance %v", loss, n, target, k, c)
					}
				}
				if k > MinMisses && k < n {
					if u := math.Pow(loss, float64(k-1)) * float64(n-k+2); u < target {
						t.Errorf("MissThreshold(%v, %d, %v) = %d but %d has union bound %v", loss, n, target, k, k-1, u)
					}
					// The union bound overstates by about 1/(1-loss): up to
					// 50 % loss the exact computation would give k or k-1.
					if loss <= 0.5 {
						exact := MinMisses
						for exact < n && runChance(loss, n, exact) >= target {
							exact++
						}
						if k-exact > 1 {
							t.Errorf("MissThreshold(%v, %d, %v) = %d, exact run-length answer %d", loss, n, target, k, exact)
						}
					}
				}
			}
		}
	}
}

// A simulation with a target large enough to measure: the share of windows
// with a run of k losses stays below the target.
func TestMissThresholdSimulated(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const loss, n, target, windows = 0.3, 50, 0.01, 200000
	k := MissThreshold(loss, n, target)
	hits := 0
	for range windows {
		run := 0
		for range n {
			if r.Float64() < loss {
				run++
				if run == k {
					hits++
					break
				}
			} else {
				run = 0
			}
		}
	}
	if got := float64(hits) / windows; got >= target {
		t.Errorf("k = %d: %v of windows had a run of %d losses, want < %v", k, got, k, target)
	}
	if k <= MinMisses {
		t.Fatalf("k = %d, expected more than the minimum at 30%% loss", k)
	}
}
