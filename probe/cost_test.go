package probe

import (
	"testing"
	"time"
)

func TestCost(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		p        CostParams
		fwd, bwd float64
		rtt      time.Duration
		want     Cost
	}{
		{name: "perfect", p: DefaultCostParams, rtt: 5 * ms, want: 256},
		{name: "at rtt-min", p: DefaultCostParams, rtt: 10 * ms, want: 256},
		// 256 + 96 * 55/110 = 304.
		{name: "halfway rtt", p: DefaultCostParams, rtt: 65 * ms, want: 304},
		{name: "at rtt-max", p: DefaultCostParams, rtt: 120 * ms, want: 352},
		{name: "beyond rtt-max", p: DefaultCostParams, rtt: 2 * time.Second, want: 352},
		// 256 / 0.9 = 284.4 -> 288.
		{name: "10% forward loss", p: DefaultCostParams, fwd: 0.1, want: 288},
		{name: "10% backward loss", p: DefaultCostParams, bwd: 0.1, want: 288},
		// 256 / 0.25 = 1024.
		{name: "half each way", p: DefaultCostParams, fwd: 0.5, bwd: 0.5, want: 1024},
		// 256 / 0.8 + 96 = 416.
		{name: "loss and rtt", p: DefaultCostParams, fwd: 0.2, rtt: 200 * ms, want: 416},
		{name: "dead", p: DefaultCostParams, fwd: 1, want: InfiniteCost},
		{name: "nearly dead saturates", p: DefaultCostParams, fwd: 0.9999, bwd: 0.9999, want: InfiniteCost},
		{name: "out of range loss clamped", p: DefaultCostParams, fwd: -0.5, rtt: 0, want: 256},
		{name: "no quantum", p: CostParams{RTTMin: 10 * ms, RTTMax: 120 * ms, MaxRTTPenalty: 96}, fwd: 0.1, want: 285},
		{name: "slight loss rounds up to a quantum", p: DefaultCostParams, fwd: 0.01, rtt: 11 * ms, want: 272},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Cost(tt.fwd, tt.bwd, tt.rtt); got != tt.want {
				t.Errorf("Cost(%v, %v, %v) = %d, want %d", tt.fwd, tt.bwd, tt.rtt, got, tt.want)
			}
		})
	}
}

// Cost never falls when loss or RTT grow.
func TestCostMonotonic(t *testing.T) {
	p := DefaultCostParams
	prev := Cost(0)
	for l := 0.0; l < 1; l += 0.01 {
		c := p.Cost(l, 0, 50*time.Millisecond)
		if c < prev {
			t.Fatalf("Cost at loss %.2f = %d < %d", l, c, prev)
		}
		prev = c
	}
	prev = 0
	for rtt := time.Duration(0); rtt < 300*time.Millisecond; rtt += time.Millisecond {
		c := p.Cost(0.1, 0, rtt)
		if c < prev {
			t.Fatalf("Cost at rtt %v = %d < %d", rtt, c, prev)
		}
		prev = c
	}
}
