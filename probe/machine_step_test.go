package probe

import (
	"testing"
	"time"
)

// Single steps: a reply that matches no outstanding probe is counted late
// and changes nothing; a probe's deadline is the Timer; a timer step past it
// counts the miss.
func TestMachineStep(t *testing.T) {
	ms := time.Millisecond
	m, err := NewMachine(Config{Interval: 100 * ms})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Step(Event{Kind: EventSent, At: t0, Seq: 1})
	if r.State != Down || r.Changed || r.Timer != t0.Add(50*ms) {
		t.Fatalf("after send: %+v, want down with Timer at +50ms (half an interval, no RTT yet)", r)
	}
	r = m.Step(Event{Kind: EventReply, At: t0.Add(10 * ms), Seq: 9})
	if r.Late != 1 || r.Misses != 0 || !r.Timer.Equal(t0.Add(50*ms)) {
		t.Fatalf("foreign reply: %+v, want Late 1 and the probe still outstanding", r)
	}
	r = m.Step(Event{Kind: EventTimer, At: t0.Add(50 * ms)})
	if r.Misses != 1 || !r.Timer.IsZero() {
		t.Fatalf("after the deadline: %+v, want 1 miss and no timer", r)
	}
	r = m.Step(Event{Kind: EventReply, At: t0.Add(60 * ms), Seq: 1})
	if r.Late != 1 || r.Misses != 1 {
		t.Fatalf("reply after its deadline: %+v, want Late 1, still 1 miss", r)
	}
	r = m.Step(Event{Kind: EventSent, At: t0.Add(100 * ms), Seq: 2})
	r = m.Step(Event{Kind: EventReply, At: t0.Add(130 * ms), Seq: 2})
	if r.Misses != 0 || r.Late != 0 || r.Loss != 0.5 {
		t.Fatalf("after a reply: %+v, want no misses, loss 0.5", r)
	}
}
