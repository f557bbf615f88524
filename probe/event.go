package probe

import "time"

// EventKind says what happened to a peer's probes.
type EventKind int

const (
	// EventSent: probe Seq was sent at At.
	EventSent EventKind = iota + 1
	// EventReply: the reply to probe Seq arrived at At.
	EventReply
	// EventTimer: time passed to At (a Ready.Timer fired).
	EventTimer
)

// Event is one input to Machine.Step.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// At is when it happened; events are stepped in the order of At.
	At time.Time
	// Seq is the probe's sequence number (EventSent, EventReply).
	Seq uint32
}

// Ready is what a Step left: the state and the figures behind it, what
// changed, and when to step again.
type Ready struct {
	// State is the link state after the step.
	State State
	// Changed says State changed in this step (log it as old -> new).
	Changed bool
	// Misses is the number of probes lost in a row so far.
	Misses int
	// K is the number of misses in a row that declare the link down: chosen
	// by MissThreshold from the loss when the current run of misses began.
	K int
	// Loss is the loss fraction over the last 4 x Window probes, runs of K or more misses
	// (outages, not loss) left out.
	Loss float64
	// HoldDown is the hold-down a down link must now be steady for.
	HoldDown time.Duration
	// Flaps counts the times the link went from up to down.
	Flaps int
	// Late counts replies in this step that matched no outstanding probe
	// (too late, duplicated or foreign); they are ignored.
	Late int
	// Timer is when to step an EventTimer if nothing else happens first;
	// zero when nothing is due.
	Timer time.Time
}
