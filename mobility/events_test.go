package mobility

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ms is t0 plus n milliseconds.
func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// clock is a settable Now for a Recorder.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// describe renders an event as a line a test can compare:
// "1 underlay - done [hub_path 212ms, direct_path b 480ms] timed out []".
func describe(e HandoverEvent) string {
	var marks []string
	for _, m := range e.Marks {
		marks = append(marks, strings.Join(strings.Fields(fmt.Sprintf("%s %s %s", m.Phase, m.Peer, m.After)), " "))
	}
	state := "open"
	if e.Done {
		state = "done"
	}
	peer := e.Peer
	if peer == "" {
		peer = "-"
	}
	return fmt.Sprintf("%d %s %s %s [%s] timed out [%s]", e.ID, e.Kind, peer, state,
		strings.Join(marks, ", "), strings.Join(e.TimedOut, ", "))
}

func describeAll(es []HandoverEvent) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, describe(e))
	}
	return out
}

// step is one call on a Recorder in a table test.
type step struct {
	now   int // clock, ms after t0, before the call
	begin *begin
	mark  *mark
}

type begin struct {
	kind, peer string
	seen       int // ms after t0
	expect     []Expect
}

type mark struct {
	id    uint64
	phase Phase
	peer  string
	at    int // ms after t0
}

var (
	hub     = Expect{PhaseHubPath, ""}
	routes  = Expect{PhaseRoutes, ""}
	directB = Expect{PhaseDirectPath, "b"}
	directC = Expect{PhaseDirectPath, "c"}
)

func TestRecorderEvents(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string // Since(0) after the steps, at the last step's clock
	}{
		{
			name: "underlay change, every phase reached",
			steps: []step{
				{now: 0, begin: &begin{KindUnderlay, "", 0, []Expect{hub, directB, routes}}},
				{now: 212, mark: &mark{1, PhaseHubPath, "", 212}},
				{now: 480, mark: &mark{1, PhaseDirectPath, "b", 480}},
				{now: 650, mark: &mark{1, PhaseRoutes, "", 650}},
			},
			want: []string{"1 underlay - done [hub_path 212ms, direct_path b 480ms, routes 650ms] timed out []"},
		},
		{
			name: "open until the last expected mark",
			steps: []step{
				{now: 0, begin: &begin{KindUnderlay, "", 0, []Expect{hub, directB, directC}}},
				{now: 100, mark: &mark{1, PhaseDirectPath, "b", 100}},
				{now: 150, mark: &mark{1, PhaseHubPath, "", 150}},
			},
			want: []string{"1 underlay - open [direct_path b 100ms, hub_path 150ms] timed out []"},
		},
		{
			name: "only the first mark of a phase and peer counts",
			steps: []step{
				{now: 0, begin: &begin{KindUnderlay, "", 0, []Expect{hub, directB, directC}}},
				{now: 100, mark: &mark{1, PhaseDirectPath, "b", 100}},
				{now: 300, mark: &mark{1, PhaseDirectPath, "b", 300}},
				{now: 400, mark: &mark{1, PhaseDirectPath, "c", 400}},
			},
			want: []string{"1 underlay - open [direct_path b 100ms, direct_path c 400ms] timed out []"},
		},
		{
			name: "an unexpected mark is recorded and not waited for",
			steps: []step{
				{now: 0, begin: &begin{KindPeer, "b", 0, []Expect{directB}}},
				{now: 50, mark: &mark{1, PhaseHubPath, "", 50}},
				{now: 90, mark: &mark{1, PhaseDirectPath, "b", 90}},
			},
			want: []string{"1 peer b done [hub_path 50ms, direct_path b 90ms] timed out []"},
		},
		{
			name: "nothing expected: done at once",
			steps: []step{
				{now: 0, begin: &begin{KindUnderlay, "", 0, nil}},
			},
			want: []string{"1 underlay - done [] timed out []"},
		},
		{
			name: "a mark before the change counts as 0",
			steps: []step{
				{now: 500, begin: &begin{KindUnderlay, "", 500, []Expect{hub}}},
				{now: 510, mark: &mark{1, PhaseHubPath, "", 400}},
			},
			want: []string{"1 underlay - done [hub_path 0s] timed out []"},
		},
		{
			name: "marks of unknown or done events are ignored",
			steps: []step{
				{now: 0, begin: &begin{KindPeer, "b", 0, []Expect{directB}}},
				{now: 10, mark: &mark{1, PhaseDirectPath, "b", 10}},
				{now: 20, mark: &mark{1, PhaseRoutes, "", 20}},
				{now: 30, mark: &mark{7, PhaseRoutes, "", 30}},
			},
			want: []string{"1 peer b done [direct_path b 10ms] timed out []"},
		},
		{
			name: "a newer event of the same kind and peer supersedes",
			steps: []step{
				{now: 0, begin: &begin{KindUnderlay, "", 0, []Expect{hub, directB, routes}}},
				{now: 0, begin: &begin{KindPeer, "c", 0, []Expect{directC}}},
				{now: 100, mark: &mark{1, PhaseHubPath, "", 100}},
				{now: 300, begin: &begin{KindUnderlay, "", 300, []Expect{hub, routes}}},
				{now: 350, mark: &mark{1, PhaseRoutes, "", 350}}, // too late for 1
				{now: 350, mark: &mark{3, PhaseRoutes, "", 350}},
			},
			want: []string{
				"1 underlay - done [hub_path 100ms] timed out [direct_path b (superseded), routes (superseded)]",
				"2 peer c open [] timed out []",
				"3 underlay - open [routes 50ms] timed out []",
			},
		},
		{
			name: "another peer's event does not supersede",
			steps: []step{
				{now: 0, begin: &begin{KindPeer, "b", 0, []Expect{directB}}},
				{now: 10, begin: &begin{KindPeer, "c", 10, []Expect{directC}}},
			},
			want: []string{"1 peer b open [] timed out []", "2 peer c open [] timed out []"},
		},
		{
			name: "the deadline times out what is missing",
			steps: []step{
				{now: 0, begin: &begin{KindUnderlay, "", 0, []Expect{hub, directB, directC, routes}}},
				{now: 200, mark: &mark{1, PhaseHubPath, "", 200}},
				{now: 1000, begin: &begin{KindPeer, "b", 1000, []Expect{directB}}},
				{now: 60_000, mark: &mark{1, PhaseRoutes, "", 60_000}}, // at the deadline: too late
			},
			want: []string{
				"1 underlay - done [hub_path 200ms] timed out [direct_path b, direct_path c, routes]",
				"2 peer b open [] timed out []",
			},
		},
		{
			name: "duplicate expectations count once",
			steps: []step{
				{now: 0, begin: &begin{KindUnderlay, "", 0, []Expect{hub, hub}}},
				{now: 5, mark: &mark{1, PhaseHubPath, "", 5}},
			},
			want: []string{"1 underlay - done [hub_path 5ms] timed out []"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: t0}
			r := NewRecorder(RecorderConfig{Now: c.Now})
			for i, s := range tc.steps {
				c.set(ms(s.now))
				switch {
				case s.begin != nil:
					b := s.begin
					r.Begin(b.kind, b.peer, ms(b.seen), fmt.Sprintf("step %d", i), b.expect)
				case s.mark != nil:
					m := s.mark
					r.Mark(m.id, m.phase, m.peer, ms(m.at))
				}
			}
			if got := describeAll(r.Since(0)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestRecorderSinceAndLatest(t *testing.T) {
	r := NewRecorder(RecorderConfig{Size: 3})
	if _, ok := r.Latest(); ok {
		t.Error("Latest of an empty recorder: ok")
	}
	if got := r.Since(0); len(got) != 0 {
		t.Errorf("Since(0) of an empty recorder: %v", got)
	}
	now := time.Now()
	for i := range 5 {
		id := r.Begin(KindPeer, fmt.Sprint("p", i), now, fmt.Sprint("move ", i), []Expect{{PhaseDirectPath, fmt.Sprint("p", i)}})
		if id != uint64(i+1) {
			t.Fatalf("Begin %d returned ID %d", i, id)
		}
	}
	for _, tc := range []struct {
		after uint64
		want  []uint64
	}{
		{0, []uint64{3, 4, 5}}, // 1 and 2 are gone: only 3 are kept
		{3, []uint64{4, 5}},
		{5, nil},
		{99, nil},
	} {
		var got []uint64
		for _, e := range r.Since(tc.after) {
			got = append(got, e.ID)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Since(%d) = %v, want %v", tc.after, got, tc.want)
		}
	}
	latest, ok := r.Latest()
	if !ok || latest.ID != 5 || latest.Summary != "move 4" || latest.Peer != "p4" {
		t.Errorf("Latest = %+v, %v; want event 5", latest, ok)
	}
	// Copies: changing them changes nothing in the recorder.
	r.Mark(5, PhaseDirectPath, "p4", now.Add(time.Second))
	latest, _ = r.Latest()
	latest.Marks[0].Phase = "changed"
	latest.Summary = "changed"
	if again, _ := r.Latest(); again.Marks[0].Phase != PhaseDirectPath || again.Summary != "move 4" {
		t.Errorf("Latest returned the recorder's own event: %+v", again)
	}
	// A mark of an event that is gone is ignored.
	r.Mark(1, PhaseDirectPath, "p0", now)
	if h := r.Histograms()[PhaseDirectPath]; h.Count != 1 {
		t.Errorf("direct_path observed %d times, want 1", h.Count)
	}
}

func TestRecorderHistograms(t *testing.T) {
	r := NewRecorder(RecorderConfig{Size: 2})
	hs := r.Histograms()
	for _, p := range Phases {
		h, ok := hs[p]
		if !ok || h.Count != 0 || len(h.Buckets) != 13 || len(h.Counts) != 13 {
			t.Errorf("%s before any mark: %+v, present %v; want 13 empty buckets", p, h, ok)
		}
	}
	now := time.Now()
	// Five events, more than the log keeps: the histograms keep them all.
	for i, d := range []time.Duration{40 * time.Millisecond, 212 * time.Millisecond, 300 * time.Millisecond, 2500 * time.Millisecond, 45 * time.Second} {
		id := r.Begin(KindUnderlay, "", now, "change", []Expect{hub})
		if i == 0 {
			r.Mark(id, "rebind", "", now.Add(d)) // an unexpected phase gets a histogram too
		}
		r.Mark(id, PhaseHubPath, "", now.Add(d))
		r.Mark(id, PhaseHubPath, "", now.Add(d+time.Second)) // not counted
	}
	got := r.Histograms()
	h := got[PhaseHubPath]
	wantCounts := []uint64{1, 1, 1, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4} // .05 .1 .2 .3 .5 .75 1 1.5 2 3 5 10 30
	if !reflect.DeepEqual(h.Counts, wantCounts) || h.Count != 5 {
		t.Errorf("hub_path counts %v count %d, want %v and 5", h.Counts, h.Count, wantCounts)
	}
	if want := 0.04 + 0.212 + 0.3 + 2.5 + 45; h.Sum < want-1e-9 || h.Sum > want+1e-9 {
		t.Errorf("hub_path sum %v, want %v", h.Sum, want)
	}
	if !reflect.DeepEqual(h.Buckets, []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10, 30}) {
		t.Errorf("buckets %v", h.Buckets)
	}
	if got["rebind"].Count != 1 || got[PhaseRoutes].Count != 0 {
		t.Errorf("rebind %+v routes %+v; want 1 and 0 observations", got["rebind"], got[PhaseRoutes])
	}
	// A copy.
	h.Counts[0] = 99
	if r.Histograms()[PhaseHubPath].Counts[0] != 1 {
		t.Error("Histograms returned the recorder's own counts")
	}
}

func TestRecorderConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  RecorderConfig
		want string
	}{
		{RecorderConfig{Size: -1}, "mobility: recorder size -1: want 0 (for 256) or more"},
		{RecorderConfig{Deadline: -time.Second}, `mobility: recorder deadline "-1s": want 0 (for 60s) or more`},
	} {
		func() {
			defer func() {
				if got := fmt.Sprint(recover()); got != tc.want {
					t.Errorf("NewRecorder(%+v) panicked with %q, want %q", tc.cfg, got, tc.want)
				}
			}()
			NewRecorder(tc.cfg)
		}()
	}
	// Defaults: 256 events and 60 s.
	c := &clock{now: t0}
	r := NewRecorder(RecorderConfig{Now: c.Now})
	for range 300 {
		r.Begin(KindUnderlay, "", t0, "change", []Expect{hub})
	}
	if got := r.Since(0); len(got) != 256 || got[0].ID != 45 {
		t.Errorf("kept %d events from ID %d, want 256 from 45", len(got), got[0].ID)
	}
	c.set(t0.Add(60*time.Second - time.Nanosecond))
	if e, _ := r.Latest(); e.Done {
		t.Errorf("done before 60 s: %+v", e)
	}
	c.set(t0.Add(60 * time.Second))
	if e, _ := r.Latest(); !e.Done || !reflect.DeepEqual(e.TimedOut, []string{"hub_path"}) {
		t.Errorf("after 60 s: %+v, want done with hub_path timed out", e)
	}
}

// The deadline passes without any call on the recorder: Wait wakes for it.
func TestRecorderWaitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRecorder(RecorderConfig{Deadline: 5 * time.Second})
		start := time.Now()
		r.Begin(KindUnderlay, "", start, "change", []Expect{hub, routes})
		rev := r.Revision()
		if err := r.Wait(t.Context(), rev); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("Wait returned after %v, want the deadline, 5s", d)
		}
		e, _ := r.Latest()
		if !e.Done || !reflect.DeepEqual(e.TimedOut, []string{"hub_path", "routes"}) {
			t.Errorf("after the deadline: %s", describe(e))
		}
	})
}

// Seen is when the change was seen, which can be before Begin: the deadline
// runs from Seen.
func TestRecorderDeadlineFromSeen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRecorder(RecorderConfig{Deadline: 10 * time.Second})
		r.Begin(KindPeer, "b", time.Now().Add(-4*time.Second), "b moved", []Expect{directB})
		time.Sleep(6*time.Second - time.Nanosecond)
		if e, _ := r.Latest(); e.Done {
			t.Fatalf("done 1 ns before the deadline: %s", describe(e))
		}
		time.Sleep(time.Nanosecond)
		if e, _ := r.Latest(); !e.Done || !reflect.DeepEqual(e.TimedOut, []string{"direct_path b"}) {
			t.Errorf("at the deadline: %s", describe(e))
		}
	})
}

// Wait returns for every kind of change: a new event, a mark, a mark that
// completes the event; at once for a revision that is not the current one;
// and with ctx's error when nothing changes.
func TestRecorderWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRecorder(RecorderConfig{})
		ctx := t.Context()
		if err := r.Wait(ctx, 7); err != nil {
			t.Errorf("Wait for another revision: %v, want nil at once", err)
		}
		changes := []func(){
			func() { r.Begin(KindUnderlay, "", time.Now(), "change", []Expect{hub, routes}) },
			func() { r.Mark(1, PhaseHubPath, "", time.Now()) },
			func() { r.Mark(1, PhaseRoutes, "", time.Now()) },
		}
		for i, change := range changes {
			rev := r.Revision()
			var woke time.Time
			done := make(chan error, 1)
			go func() {
				err := r.Wait(ctx, rev)
				woke = time.Now()
				done <- err
			}()
			synctest.Wait() // Wait is blocked
			time.Sleep(time.Second)
			changed := time.Now()
			change()
			if err := <-done; err != nil || !woke.Equal(changed) {
				t.Errorf("change %d: Wait returned %v at %v, want nil at %v", i, err, woke, changed)
			}
		}
		// A mark that is ignored changes nothing.
		rev := r.Revision()
		r.Mark(1, PhaseRoutes, "", time.Now())
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start := time.Now()
		if err := r.Wait(wctx, rev); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Errorf("Wait without a change: %v after %v, want the context's deadline after 3s", err, time.Since(start))
		}
	})
}

// Concurrent writers and readers, for the race detector; every mark lands.
func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder(RecorderConfig{})
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for w := range 4 {
		wg.Go(func() {
			peer := fmt.Sprint("p", w)
			for range 50 {
				id := r.Begin(KindPeer, peer, time.Now(), "moved", []Expect{{PhaseDirectPath, peer}})
				r.Mark(id, PhaseDirectPath, peer, time.Now())
			}
		})
	}
	readers := sync.WaitGroup{}
	readers.Go(func() {
		rev := uint64(0)
		for ctx.Err() == nil {
			s := r.Read(0)
			for i, e := range s.Events {
				if e.ID != uint64(i+1) {
					t.Errorf("event %d of the log has ID %d", i, e.ID)
					break
				}
			}
			r.Latest()
			r.Histograms()
			r.Wait(ctx, rev)
			rev = s.Revision
		}
	})
	wg.Wait()
	cancel()
	readers.Wait()
	s := r.Read(0)
	if h := s.Histograms[PhaseDirectPath]; h.Count != 200 {
		t.Errorf("direct_path observed %d times, want 200", h.Count)
	}
	if s.LastID != 200 || s.Revision != 400 {
		t.Errorf("last ID %d, revision %d; want 200 and 400 (each event begun and marked)", s.LastID, s.Revision)
	}
	for _, e := range s.Events {
		if !e.Done || len(e.Marks) != 1 {
			t.Errorf("event %s, want done with its mark", describe(e))
		}
	}
}
