package probe

import (
	"math"
	"time"
)

// Cost is a link's cost in the spirit of babeld: PerfectCost for a link
// without loss or delay, more for a worse one, InfiniteCost for a dead one.
type Cost uint16

const (
	// PerfectCost is the cost of a link without loss and with an RTT at or
	// below CostParams.RTTMin.
	PerfectCost Cost = 256
	// InfiniteCost is the cost of a link that carries nothing.
	InfiniteCost Cost = math.MaxUint16
)

// CostParams says how loss and RTT become a Cost.
type CostParams struct {
	// RTTMin is the RTT below which the link pays no RTT penalty.
	RTTMin time.Duration
	// RTTMax is the RTT at and above which it pays MaxRTTPenalty.
	RTTMax time.Duration
	// MaxRTTPenalty is the largest RTT penalty, reached at RTTMax.
	MaxRTTPenalty Cost
	// Quantum is the step costs are rounded up to, so that noise in the
	// figures does not change the cost (and cause route updates).
	Quantum Cost
}

// DefaultCostParams are babeld's RTT defaults (rtt-min 10 ms, rtt-max
// 120 ms, max-rtt-penalty 96) with costs rounded up to multiples of 16.
var DefaultCostParams = CostParams{
	RTTMin:        10 * time.Millisecond,
	RTTMax:        120 * time.Millisecond,
	MaxRTTPenalty: 96,
	Quantum:       16,
}

// Cost returns the cost of a link with forward and backward loss fractions
// and round-trip time rtt: the ETX-like loss cost
// PerfectCost / ((1-forward)(1-backward)) plus an RTT penalty that grows
// linearly from 0 at RTTMin to MaxRTTPenalty at RTTMax, rounded up to a
// multiple of Quantum. A link that delivers nothing, or costs InfiniteCost
// or more, costs InfiniteCost.
func (p CostParams) Cost(forward, backward float64, rtt time.Duration) Cost {
	delivery := (1 - clamp01(forward)) * (1 - clamp01(backward))
	if delivery <= 0 {
		return InfiniteCost
	}
	c := float64(PerfectCost) / delivery
	switch {
	case rtt >= p.RTTMax:
		c += float64(p.MaxRTTPenalty)
	case rtt > p.RTTMin:
		c += float64(p.MaxRTTPenalty) * float64(rtt-p.RTTMin) / float64(p.RTTMax-p.RTTMin)
	}
	if q := float64(max(p.Quantum, 1)); q > 1 {
		c = math.Ceil(c/q-1e-9) * q
	} else {
		c = math.Ceil(c - 1e-9)
	}
	if c >= float64(InfiniteCost) {
		return InfiniteCost
	}
	return Cost(c)
}
