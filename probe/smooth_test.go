package probe

import "testing"

func TestSmoothed(t *testing.T) {
	tests := []struct {
		name    string
		hold    int
		instant []Cost
		want    []Cost // smoothed cost after each round
	}{
		{name: "first sets", hold: 3, instant: []Cost{300}, want: []Cost{300}},
		{name: "degradation at once", hold: 3, instant: []Cost{256, 400}, want: []Cost{256, 400}},
		{name: "improvement after hold", hold: 3, instant: []Cost{400, 256, 256, 256}, want: []Cost{400, 400, 400, 256}},
		{name: "improvement by the least seen", hold: 3, instant: []Cost{400, 256, 320, 272}, want: []Cost{400, 400, 400, 320}},
		{name: "interrupted improvement starts over", hold: 3, instant: []Cost{400, 256, 256, 400, 256, 256, 256}, want: []Cost{400, 400, 400, 400, 400, 400, 256}},
		{name: "equal interrupts", hold: 2, instant: []Cost{400, 256, 400, 256, 256}, want: []Cost{400, 400, 400, 400, 256}},
		{name: "degradation during hold", hold: 3, instant: []Cost{400, 256, 512}, want: []Cost{400, 400, 512}},
		{name: "stale candidate forgotten", hold: 2, instant: []Cost{400, 380, 400, 256, 256}, want: []Cost{400, 400, 400, 400, 256}},
		{name: "hold 1 at once", hold: 1, instant: []Cost{400, 256}, want: []Cost{400, 256}},
		{name: "hold 0 at once", hold: 0, instant: []Cost{400, 256}, want: []Cost{400, 256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Smoothed
			for i, c := range tt.instant {
				s = s.Update(c, tt.hold)
				if s.Cost != tt.want[i] {
					t.Fatalf("round %d (instant %d): Cost %d, want %d", i, c, s.Cost, tt.want[i])
				}
			}
		})
	}
}

func TestBetter(t *testing.T) {
	tests := []struct {
		name                   string
		newI, newS, curI, curS Cost
		want                   bool
	}{
		{name: "both better", newI: 256, newS: 256, curI: 300, curS: 300, want: true},
		{name: "only instant better", newI: 256, newS: 400, curI: 300, curS: 300, want: false},
		{name: "only smoothed better", newI: 400, newS: 256, curI: 300, curS: 300, want: false},
		{name: "equal", newI: 300, newS: 300, curI: 300, curS: 300, want: false},
		{name: "both worse", newI: 400, newS: 400, curI: 300, curS: 300, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Better(tt.newI, tt.newS, tt.curI, tt.curS); got != tt.want {
				t.Errorf("Better = %v, want %v", got, tt.want)
			}
		})
	}
}
