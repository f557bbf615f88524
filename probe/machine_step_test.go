package probe

import (
	"testing"
	"time"
)

// Single steps: a reply that matches no probe is counted late and changes
// nothing; a probe's deadline is the Timer (four intervals before any RTT is
// known); a timer step past it counts the miss; a reply after the deadline
// undoes the miss (the probe was delayed, not lost) and is an RTT sample.
func TestMachineStep(t *testing.T) {
	ms := time.Millisecond
	m, err := NewMachine(Config{Interval: 100 * ms})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Step(Event{Kind: EventSent, At: t0, Seq: 1})
	if r.State != Down || r.Changed || r.Timer != t0.Add(400*ms) {
		t.Fatalf("after send: %+v, want down with Timer at +400ms (four intervals, no RTT yet)", r)
	}
	r = m.Step(Event{Kind: EventReply, At: t0.Add(10 * ms), Seq: 9})
	if r.Late != 1 || r.Misses != 0 || !r.Timer.Equal(t0.Add(400*ms)) {
		t.Fatalf("foreign reply: %+v, want Late 1 and the probe still outstanding", r)
	}
	r = m.Step(Event{Kind: EventTimer, At: t0.Add(400 * ms)})
	if r.Misses != 1 || !r.Timer.IsZero() {
		t.Fatalf("after the deadline: %+v, want 1 miss and no timer", r)
	}
	r = m.Step(Event{Kind: EventReply, At: t0.Add(450 * ms), Seq: 1})
	if r.Late != 0 || r.Misses != 0 || r.Loss != 0 {
		t.Fatalf("reply after its deadline: %+v, want the miss undone: no misses, no loss", r)
	}
	r = m.Step(Event{Kind: EventReply, At: t0.Add(460 * ms), Seq: 1})
	if r.Late != 1 {
		t.Fatalf("duplicate reply: %+v, want Late 1", r)
	}
	// The 450 ms sample sets the timeout: SRTT 450 + 4 x 225, at most four
	// intervals.
	r = m.Step(Event{Kind: EventSent, At: t0.Add(500 * ms), Seq: 2})
	if !r.Timer.Equal(t0.Add(900 * ms)) {
		t.Fatalf("after the second send: Timer %v, want +900ms", r.Timer.Sub(t0))
	}
	m.Step(Event{Kind: EventSent, At: t0.Add(600 * ms), Seq: 3})
	r = m.Step(Event{Kind: EventReply, At: t0.Add(700 * ms), Seq: 3})
	r = m.Step(Event{Kind: EventTimer, At: t0.Add(900 * ms)})
	if r.Misses != 1 || r.Loss != 0 {
		t.Fatalf("probe 2 timed out after probe 3 came back: %+v, want 1 miss in a row, loss not yet counted", r)
	}
}

// A probe counted lost (its run of misses ended shorter than K) whose reply
// comes after all is taken back out of the loss.
func TestMachineLateReplyTakesBackLoss(t *testing.T) {
	ms := time.Millisecond
	m, err := NewMachine(Config{Interval: 100 * ms})
	if err != nil {
		t.Fatal(err)
	}
	m.Step(Event{Kind: EventSent, At: t0, Seq: 1})
	m.Step(Event{Kind: EventReply, At: t0.Add(10 * ms), Seq: 1})
	m.Step(Event{Kind: EventSent, At: t0.Add(100 * ms), Seq: 2}) // deadline +150 ms
	m.Step(Event{Kind: EventSent, At: t0.Add(200 * ms), Seq: 3})
	r := m.Step(Event{Kind: EventReply, At: t0.Add(210 * ms), Seq: 3})
	if r.Loss != 1.0/3 {
		t.Fatalf("probe 2 timed out, probe 3 answered: loss %v, want 1/3", r.Loss)
	}
	r = m.Step(Event{Kind: EventReply, At: t0.Add(400 * ms), Seq: 2})
	if r.Loss != 0 || r.Late != 0 {
		t.Errorf("probe 2's reply after all: loss %v late %d, want 0 and 0", r.Loss, r.Late)
	}
}
