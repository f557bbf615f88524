package probe

import (
	"math/rand/v2"
	"testing"
)

func TestWindow(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		outcomes string // '1' reply, '0' loss, oldest first
		count    int
		recv     int
		loss     float64
		last3    int
	}{
		{name: "empty", size: 4, outcomes: "", count: 0, recv: 0, loss: 0, last3: 0},
		{name: "partial", size: 4, outcomes: "10", count: 2, recv: 1, loss: 0.5, last3: 1},
		{name: "full", size: 4, outcomes: "1101", count: 4, recv: 3, loss: 0.25, last3: 2},
		{name: "oldest dropped", size: 4, outcomes: "0001111", count: 4, recv: 4, loss: 0, last3: 3},
		{name: "losses push out replies", size: 4, outcomes: "11110000", count: 4, recv: 0, loss: 1, last3: 0},
		{name: "size one", size: 1, outcomes: "1010", count: 1, recv: 0, loss: 1, last3: 0},
		{name: "across words", size: 100, outcomes: repeat("1", 70) + repeat("0", 40), count: 100, recv: 60, loss: 0.4, last3: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(tt.size)
			for _, c := range tt.outcomes {
				w = w.Add(c == '1')
			}
			if w.Count() != tt.count || w.Received() != tt.recv || w.Loss() != tt.loss || w.Last(3) != tt.last3 {
				t.Errorf("Count %d Received %d Loss %v Last(3) %d, want %d %d %v %d",
					w.Count(), w.Received(), w.Loss(), w.Last(3), tt.count, tt.recv, tt.loss, tt.last3)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// The window against a slice holding the last N outcomes, over random
// outcomes and sizes.
func TestWindowAgainstSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 5, 63, 64, 65, 100, MaxWindow} {
		w := NewWindow(size)
		var ref []bool
		for i := range 5 * size {
			ok := r.Float64() < 0.7
			w = w.Add(ok)
			ref = append(ref, ok)
			if len(ref) > size {
				ref = ref[1:]
			}
			recv := 0
			for _, o := range ref {
				if o {
					recv++
				}
			}
			last5 := 0
			for _, o := range ref[max(len(ref)-5, 0):] {
				if o {
					last5++
				}
			}
			if w.Count() != len(ref) || w.Received() != recv || w.popcount() != recv || w.Last(5) != last5 {
				t.Fatalf("size %d step %d: Count %d Received %d bits %d Last(5) %d, want %d %d %d %d",
					size, i, w.Count(), w.Received(), w.popcount(), w.Last(5), len(ref), recv, recv, last5)
			}
		}
	}
}

func TestNewWindowRejectsBadSize(t *testing.T) {
	for _, n := range []int{0, -1, MaxWindow + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewWindow(%d) did not panic", n)
				}
			}()
			NewWindow(n)
		}()
	}
}

func TestWindowFound(t *testing.T) {
	w := NewWindow(4)
	for _, r := range []bool{false, true, false, true} {
		w = w.Add(r)
	}
	w = w.Found()
	if w.Received() != 3 || w.Last(2) != 2 || w.popcount() != 3 {
		t.Errorf("after Found: received %d, last two %d, want 3 and 2 (the newest loss found)", w.Received(), w.Last(2))
	}
	w = w.Found().Found()
	if w.Received() != 4 || w.Loss() != 0 {
		t.Errorf("after finding every loss: received %d loss %v, want 4 and 0", w.Received(), w.Loss())
	}
}
