package probe

import "math"

// MinMisses is the fewest consecutive misses that declare a link down: 4,
// not BFD's usual 3, because on a clean link the first loss of a sudden
// bout of loss p is a run of K with probability p^(K-1) (TestMachineLossOnset).
const MinMisses = 4

// MissThreshold returns how many consecutive misses declare a link down: the
// smallest k >= MinMisses such that k losses in a row, happening by chance
// on a link with independent loss fraction loss, have a probability below
// target within a window of window probes.
//
// The chance is the union bound p^k * (window-k+1): one term per position a
// run of k could start at. It is never below the exact chance (a run of k
// somewhere in the window), so the k it gives errs towards fewer false
// downs. It overstates by about 1/(1-loss) (a run but the first follows a
// reply), so up to 50 % loss k is at most one more than an exact run-length
// computation would give (the tests check both against it). With no k up to the window good enough (loss 1, target 0), it
// returns max(window, MinMisses).
func MissThreshold(loss float64, window int, target float64) int {
	limit := max(window, MinMisses)
	if math.IsNaN(loss) || loss < 0 {
		loss = 0
	}
	if loss >= 1 || target <= 0 {
		return limit
	}
	pk := math.Pow(loss, MinMisses-1)
	for k := MinMisses; k < limit; k++ {
		pk *= loss
		if pk*float64(window-k+1) < target {
			return k
		}
	}
	return limit
}
