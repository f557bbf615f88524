package mobility

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Phase is a step of a handover that is timed: the time from the change
// being seen to the step working again.
type Phase string

const (
	// PhaseHubPath: a hub answers again over the tunnel (the first probe or
	// ping reply after the change).
	PhaseHubPath Phase = "hub_path"
	// PhaseDirectPath: the direct (ICE) path to a peer works again; one
	// mark per peer.
	PhaseDirectPath Phase = "direct_path"
	// PhaseRoutes: BGP routes converged again (sessions up, best paths
	// installed).
	PhaseRoutes Phase = "routes"
)

// Phases are the known phases, in the order they usually complete.
var Phases = []Phase{PhaseHubPath, PhaseDirectPath, PhaseRoutes}

// Kinds of handover events.
const (
	// KindUnderlay: this node's own underlay changed (new address, new
	// interface).
	KindUnderlay = "underlay"
	// KindPeer: a peer moved (its endpoint changed).
	KindPeer = "peer"
)

// supersededReason follows the marks in HandoverEvent.TimedOut that were
// still missing when a newer event of the same kind and peer began.
const supersededReason = "superseded"

// Expect is a mark that an event waits for: when every expected mark is
// there, the event is done.
type Expect struct {
	Phase Phase
	Peer  string // "" for the phases of the whole node
}

// String is the phase, followed by the peer if there is one:
// "direct_path b".
func (e Expect) String() string {
	if e.Peer == "" {
		return string(e.Phase)
	}
	return string(e.Phase) + " " + e.Peer
}

// Mark is a phase of a handover that was reached.
type Mark struct {
	Phase Phase
	Peer  string        // "" for the phases of the whole node
	At    time.Time     // when the phase was reached
	After time.Duration // At minus the event's Seen; never negative
}

// HandoverEvent is one handover: a change that was seen and the phases
// reached since.
type HandoverEvent struct {
	ID      uint64    // 1 for the first event, then one more for each
	Kind    string    // KindUnderlay or KindPeer
	Peer    string    // the peer that moved, for KindPeer
	Seen    time.Time // when the change was seen
	Summary string    // the change, one line
	Marks   []Mark    // the phases reached, in the order they were marked
	// Done: every expected mark is there, or the event timed out, or a
	// newer event of the same kind and peer superseded it. A done event
	// takes no more marks.
	Done bool
	// TimedOut lists the expected marks not reached ("routes",
	// "direct_path b"): by the deadline, or, followed by " (superseded)",
	// before a newer event of the same kind and peer began.
	TimedOut []string
}

// clone is a deep copy of e.
func (e HandoverEvent) clone() HandoverEvent {
	e.Marks = slices.Clone(e.Marks)
	e.TimedOut = slices.Clone(e.TimedOut)
	return e
}

// Histogram is a Prometheus-style histogram of handover durations in
// seconds.
type Histogram struct {
	Buckets []float64 // upper bounds in seconds, ascending; +Inf is implied
	Counts  []uint64  // observations <= each bound (cumulative)
	Count   uint64    // all observations
	Sum     float64   // their sum in seconds
}

// durationBuckets are the upper bounds of the histograms, in seconds: fine
// around the targets (p50 < 300 ms, p95 < 1 s), coarse up to the deadline.
var durationBuckets = []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10, 30}

func newHistogram() *Histogram {
	return &Histogram{Buckets: durationBuckets, Counts: make([]uint64, len(durationBuckets))}
}

func (h *Histogram) observe(d time.Duration) {
	s := d.Seconds()
	for i, b := range h.Buckets {
		if s <= b {
			h.Counts[i]++
		}
	}
	h.Count++
	h.Sum += s
}

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Size is how many events are kept; when there are more, the oldest
	// go. 0 means 256.
	Size int
	// Deadline is how long after Seen an event waits for its marks; the
	// marks still missing then are reported as timed out. 0 means 60s.
	Deadline time.Duration
	// Now is the clock that deadlines are checked against; nil means
	// time.Now. For tests.
	Now func() time.Time
}

// validate checks cfg and fills defaults.
func (cfg *RecorderConfig) validate() error {
	if cfg.Size < 0 {
		return fmt.Errorf("mobility: recorder size %d: want 0 (for 256) or more", cfg.Size)
	}
	if cfg.Deadline < 0 {
		return fmt.Errorf("mobility: recorder deadline %q: want 0 (for 60s) or more", cfg.Deadline)
	}
	if cfg.Size == 0 {
		cfg.Size = 256
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// Recorder is a bounded log of handover events and histograms of how long
// their phases took. It is safe for concurrent use. It starts no
// goroutine: deadlines are checked whenever the log is read or written, and
// by Wait's timer.
type Recorder struct {
	size     int
	deadline time.Duration
	now      func() time.Time

	// mu guards the fields below it.
	mu       sync.Mutex
	events   []*record // oldest first, IDs ascending, at most size
	lastID   uint64
	revision uint64               // one more on every change
	hists    map[Phase]*Histogram // cumulative since NewRecorder
	changed  chan struct{}        // closed and replaced on every change
}

// record is a HandoverEvent with the marks it still waits for.
type record struct {
	HandoverEvent
	expect []Expect // not marked yet; empty once done
}

// NewRecorder returns an empty Recorder. It panics if cfg has a negative
// Size or Deadline: those are programming errors.
func NewRecorder(cfg RecorderConfig) *Recorder {
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	r := &Recorder{
		size:     cfg.Size,
		deadline: cfg.Deadline,
		now:      cfg.Now,
		hists:    map[Phase]*Histogram{},
		changed:  make(chan struct{}),
	}
	for _, p := range Phases {
		r.hists[p] = newHistogram()
	}
	return r
}

// Begin records a new event and returns its ID, for Mark. The event is
// done when every mark in expect is there (at once if expect is empty). An
// open event of the same kind and peer is closed first: its missing marks
// are reported as superseded.
func (r *Recorder) Begin(kind, peer string, seen time.Time, summary string, expect []Expect) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	for _, e := range r.events {
		if !e.Done && e.Kind == kind && e.Peer == peer {
			e.closeLocked(supersededReason)
		}
	}
	r.lastID++
	e := &record{HandoverEvent: HandoverEvent{ID: r.lastID, Kind: kind, Peer: peer, Seen: seen, Summary: summary}}
	for _, x := range expect {
		if !slices.Contains(e.expect, x) {
			e.expect = append(e.expect, x)
		}
	}
	e.Done = len(e.expect) == 0
	if len(r.events) == r.size {
		r.events[0] = nil
		r.events = r.events[1:]
	}
	r.events = append(r.events, e)
	r.changedLocked()
	return e.ID
}

// Mark records that phase (for peer, "" for the whole node) of event id was
// reached at at, and adds the time since the event's Seen to the phase's
// histogram. Only the first mark of each phase and peer counts; marks of
// events that are done or no longer kept are ignored. A mark that was not
// expected is recorded too, but the event does not wait for it.
func (r *Recorder) Mark(id uint64, phase Phase, peer string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	e := r.findLocked(id)
	if e == nil || e.Done {
		return
	}
	for _, m := range e.Marks {
		if m.Phase == phase && m.Peer == peer {
			return
		}
	}
	after := max(at.Sub(e.Seen), 0)
	e.Marks = append(e.Marks, Mark{Phase: phase, Peer: peer, At: at, After: after})
	h := r.hists[phase]
	if h == nil {
		h = newHistogram()
		r.hists[phase] = h
	}
	h.observe(after)
	e.expect = slices.DeleteFunc(e.expect, func(x Expect) bool { return x == Expect{phase, peer} })
	e.Done = len(e.expect) == 0
	r.changedLocked()
}

// Since returns copies of the events with ID > id, oldest first.
func (r *Recorder) Since(id uint64) []HandoverEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	return r.sinceLocked(id)
}

// Latest returns a copy of the newest event; false if there is none.
func (r *Recorder) Latest() (HandoverEvent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	if len(r.events) == 0 {
		return HandoverEvent{}, false
	}
	return r.events[len(r.events)-1].clone(), true
}

// Histograms returns copies of the histograms of every phase marked since
// NewRecorder, and of the known Phases even before their first mark. They
// keep counting when old events leave the log.
func (r *Recorder) Histograms() map[Phase]Histogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.histogramsLocked()
}

// EventLog is the log at one moment.
type EventLog struct {
	Events     []HandoverEvent     // those with ID > the after given to Read, oldest first
	LastID     uint64              // the highest ID given so far; 0 before the first event
	Revision   uint64              // counts the changes: events begun, marked, done
	Histograms map[Phase]Histogram // as Histograms returns them
}

// Read returns copies of the events with ID > after, with the last ID, the
// revision and the histograms, all of the same moment. Its Revision is what
// Wait takes.
func (r *Recorder) Read(after uint64) EventLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	return EventLog{
		Events:     r.sinceLocked(after),
		LastID:     r.lastID,
		Revision:   r.revision,
		Histograms: r.histogramsLocked(),
	}
}

// Revision counts the changes to the log so far: every event begun, every
// mark, every event done (also by its deadline).
func (r *Recorder) Revision() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	return r.revision
}

// Wait blocks until the log has changed after revision (the Revision of
// an EventLog): an event began, was marked or became done, also by reaching
// its deadline. It returns nil then, at once if that has already happened,
// or ctx.Err() when ctx is done first. It is what a long poll waits on:
// Read the log, and if it has nothing new, Wait for its Revision.
func (r *Recorder) Wait(ctx context.Context, revision uint64) error {
	for {
		r.mu.Lock()
		now := r.now()
		r.expireLocked(now)
		if r.revision != revision {
			r.mu.Unlock()
			return nil
		}
		ch := r.changed
		next, ok := r.nextDeadlineLocked()
		r.mu.Unlock()

		var expiry <-chan time.Time
		var t *time.Timer
		if ok {
			t = time.NewTimer(max(next.Sub(now), 0))
			expiry = t.C
		}
		select {
		case <-ctx.Done():
		case <-ch:
		case <-expiry:
		}
		if t != nil {
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// findLocked is the kept event with ID id, or nil.
func (r *Recorder) findLocked(id uint64) *record {
	i, ok := slices.BinarySearchFunc(r.events, id, func(e *record, id uint64) int { return cmp.Compare(e.ID, id) })
	if !ok {
		return nil
	}
	return r.events[i]
}

func (r *Recorder) sinceLocked(id uint64) []HandoverEvent {
	i := sort.Search(len(r.events), func(i int) bool { return r.events[i].ID > id })
	out := make([]HandoverEvent, 0, len(r.events)-i)
	for _, e := range r.events[i:] {
		out = append(out, e.clone())
	}
	return out
}

func (r *Recorder) histogramsLocked() map[Phase]Histogram {
	out := make(map[Phase]Histogram, len(r.hists))
	for p, h := range r.hists {
		out[p] = Histogram{Buckets: slices.Clone(h.Buckets), Counts: slices.Clone(h.Counts), Count: h.Count, Sum: h.Sum}
	}
	return out
}

// expireLocked closes the open events whose deadline is not after now.
func (r *Recorder) expireLocked(now time.Time) {
	changed := false
	for _, e := range r.events {
		if !e.Done && !now.Before(e.Seen.Add(r.deadline)) {
			e.closeLocked("")
			changed = true
		}
	}
	if changed {
		r.changedLocked()
	}
}

// nextDeadlineLocked is the earliest deadline of an open event; false if
// every event is done.
func (r *Recorder) nextDeadlineLocked() (time.Time, bool) {
	var next time.Time
	ok := false
	for _, e := range r.events {
		if d := e.Seen.Add(r.deadline); !e.Done && (!ok || d.Before(next)) {
			next, ok = d, true
		}
	}
	return next, ok
}

// changedLocked counts a change and wakes the waiters.
func (r *Recorder) changedLocked() {
	r.revision++
	close(r.changed)
	r.changed = make(chan struct{})
}

// closeLocked makes e done, its missing marks timed out, followed by
// " (reason)" unless reason is "". The caller counts the change.
func (e *record) closeLocked(reason string) {
	for _, x := range e.expect {
		s := x.String()
		if reason != "" {
			s += " (" + reason + ")"
		}
		e.TimedOut = append(e.TimedOut, s)
	}
	e.expect = nil
	e.Done = true
}
