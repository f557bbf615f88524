package probe

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDirections(t *testing.T) {
	type reply struct{ s, r uint32 }
	tests := []struct {
		name     string
		n        int
		replies  []reply
		fwd, bwd float64
		ok       bool
	}{
		{name: "nothing", n: 100, ok: false},
		{name: "one reply", n: 100, replies: []reply{{1, 1}}, ok: false},
		{name: "no loss", n: 100, replies: []reply{{1, 7}, {2, 8}, {3, 9}, {4, 10}}, fwd: 0, bwd: 0, ok: true},
		// 4 sent, the reflector saw 2 (1 and 4), we got both replies.
		{name: "forward loss", n: 100, replies: []reply{{1, 1}, {4, 2}}, fwd: 0.5, bwd: 0, ok: true},
		// 4 sent, all reached it (counter 1..4), we got 2 of its 4 replies.
		{name: "backward loss", n: 100, replies: []reply{{1, 1}, {4, 4}}, fwd: 0, bwd: 0.5, ok: true},
		{name: "wraps", n: 100, replies: []reply{{math.MaxUint32, math.MaxUint32 - 1}, {0, math.MaxUint32}, {1, 0}}, fwd: 0, bwd: 0, ok: true},
		{name: "reordered ignored", n: 100, replies: []reply{{1, 1}, {3, 3}, {2, 2}, {4, 4}}, fwd: 0, bwd: 0.25, ok: true},
		{name: "reflector restart starts afresh", n: 100, replies: []reply{{1, 100}, {2, 101}, {3, 1}, {6, 2}}, fwd: 0.5, bwd: 0, ok: true},
		// Buckets of 2: the oldest bucket (1, 2) falls out, the gap at 3 with it.
		{name: "window slides", n: 4, replies: []reply{{1, 1}, {3, 2}, {5, 3}, {6, 4}, {7, 5}, {8, 6}}, fwd: 0, bwd: 0, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDirections(tt.n)
			for _, r := range tt.replies {
				d = d.Add(r.s, r.r)
			}
			fwd, bwd, ok := d.Loss()
			if ok != tt.ok || math.Abs(fwd-tt.fwd) > 1e-9 || math.Abs(bwd-tt.bwd) > 1e-9 {
				t.Errorf("Loss = %v %v %v, want %v %v %v", fwd, bwd, ok, tt.fwd, tt.bwd, tt.ok)
			}
		})
	}
}

// Simulated loss of 10 % forward and 20 % backward is read within a few
// points over a window of 1000 probes.
func TestDirectionsSimulated(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := NewDirections(1000)
	var refl uint32
	for s := uint32(0); s < 20000; s++ {
		if r.Float64() < 0.1 {
			continue
		}
		refl++
		if r.Float64() < 0.2 {
			continue
		}
		d = d.Add(s, refl)
	}
	fwd, bwd, ok := d.Loss()
	if !ok || math.Abs(fwd-0.1) > 0.04 || math.Abs(bwd-0.2) > 0.04 {
		t.Errorf("Loss = %.3f %.3f %v, want about 0.1 0.2", fwd, bwd, ok)
	}
}
