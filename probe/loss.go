package probe

import (
	"fmt"
	"math/bits"
)

// MaxWindow is the largest number of probe outcomes a Window holds.
const MaxWindow = 1024

// Window is the loss estimator: a ring bitmap of the outcomes of the last N
// probes (1 = a reply came back). It is a value: copying it takes a
// snapshot. Make one with NewWindow; the zero value holds nothing and counts
// every Add as the only outcome.
type Window struct {
	bits  [MaxWindow / 64]uint64
	size  int // N
	next  int // slot the next outcome goes to
	count int // outcomes held, at most size
	recv  int // replies among them
}

// NewWindow returns an empty window of the last n outcomes. It panics unless
// 1 <= n <= MaxWindow: the size comes from a validated Config.
func NewWindow(n int) Window {
	if n < 1 || n > MaxWindow {
		panic(fmt.Sprintf("probe: window size %d outside 1..%d", n, MaxWindow))
	}
	return Window{size: n}
}

// Add returns w with one more outcome, the oldest dropped once it holds N.
func (w Window) Add(received bool) Window {
	if w.size == 0 {
		w.size = 1
	}
	word, bit := w.next/64, uint(w.next%64)
	if w.count == w.size {
		if w.bits[word]&(1<<bit) != 0 {
			w.recv--
		}
	} else {
		w.count++
	}
	if received {
		w.bits[word] |= 1 << bit
		w.recv++
	} else {
		w.bits[word] &^= 1 << bit
	}
	w.next = (w.next + 1) % w.size
	return w
}

// Found returns w with one loss it holds turned into a reply (the newest
// loss): a probe counted lost whose reply came after all. Without a loss
// held it returns w.
func (w Window) Found() Window {
	for i := 1; i <= w.count; i++ {
		s := (w.next - i + w.size) % w.size
		if w.bits[s/64]>>uint(s%64)&1 == 0 {
			w.bits[s/64] |= 1 << uint(s%64)
			w.recv++
			return w
		}
	}
	return w
}

// Size returns N, the number of outcomes the window holds when full.
func (w Window) Size() int { return w.size }

// Count returns the number of outcomes held, at most Size.
func (w Window) Count() int { return w.count }

// Received returns the number of replies among the outcomes held.
func (w Window) Received() int { return w.recv }

// Loss returns the fraction of the outcomes held that were losses, 0 with
// none held.
func (w Window) Loss() float64 {
	if w.count == 0 {
		return 0
	}
	return float64(w.count-w.recv) / float64(w.count)
}

// Last returns how many of the last m outcomes were replies (m is capped at
// Count).
func (w Window) Last(m int) int {
	m = min(m, w.count)
	n := 0
	for i := 1; i <= m; i++ {
		s := (w.next - i + w.size) % w.size
		n += int(w.bits[s/64] >> uint(s%64) & 1)
	}
	return n
}

// popcount recounts the replies held; tests check it against Received.
func (w Window) popcount() int {
	n := 0
	for _, b := range w.bits {
		n += bits.OnesCount64(b)
	}
	return n
}
