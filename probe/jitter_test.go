package probe

import (
	"math"
	"testing"
	"time"
)

func TestJitterAdd(t *testing.T) {
	ms := time.Millisecond
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		transits []time.Duration // probe i is sent at i*100ms and takes transits[i]
		want     time.Duration
	}{
		{name: "none", transits: nil, want: 0},
		{name: "one probe has no D", transits: []time.Duration{30 * ms}, want: 0},
		{name: "constant transit", transits: []time.Duration{30 * ms, 30 * ms, 30 * ms}, want: 0},
		// D = 16ms: J = 16/16 = 1ms.
		{name: "one step", transits: []time.Duration{30 * ms, 46 * ms}, want: 1 * ms},
		// D = -16ms counts as 16ms.
		{name: "step down", transits: []time.Duration{46 * ms, 30 * ms}, want: 1 * ms},
		// J1 = 1ms; D = 16 again: J2 = 1 + (16-1)/16 = 1.9375ms.
		{name: "two steps", transits: []time.Duration{30 * ms, 46 * ms, 30 * ms}, want: 1937500 * time.Nanosecond},
		// A clock offset between sender and receiver cancels.
		{name: "offset cancels", transits: []time.Duration{-5 * time.Second, -5 * time.Second}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j Jitter
			for i, tr := range tt.transits {
				sent := base.Add(time.Duration(i) * 100 * ms)
				j = j.Add(sent, sent.Add(tr))
			}
			if got := j.Value(); got != tt.want {
				t.Errorf("Value = %v, want %v", got, tt.want)
			}
		})
	}
}

// Transit alternating between two values a distance d apart gives |D| = d
// every time, so J converges to d.
func TestJitterConverges(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var j Jitter
	for i := range 500 {
		sent := base.Add(time.Duration(i) * 100 * time.Millisecond)
		tr := 40 * time.Millisecond
		if i%2 == 1 {
			tr += 5 * time.Millisecond
		}
		j = j.Add(sent, sent.Add(tr))
	}
	if got := j.Value(); math.Abs(float64(got-5*time.Millisecond)) > float64(time.Microsecond) {
		t.Errorf("Value = %v, want 5ms", got)
	}
}
