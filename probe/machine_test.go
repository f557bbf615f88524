package probe

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sim drives a Machine on a simulated clock: probes every NextSend, each
// lost or answered after rtt as lost() decides, the machine's timers
// stepped when due.
type sim struct {
	t       *testing.T
	m       *Machine
	rnd     *rand.Rand
	now     time.Time
	seq     uint32
	nextTx  time.Time
	replies []simReply // in arrival order
	timer   time.Time
	rtt     time.Duration
	last    Ready
	ups     []time.Time
	downs   []time.Time
	downK   []int
}

type simReply struct {
	seq uint32
	at  time.Time
}

func newSim(t *testing.T, cfg Config, seed uint64) *sim {
	t.Helper()
	m, err := NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, m: m, rnd: rand.New(rand.NewPCG(seed, seed+1)), now: t0, nextTx: t0, rtt: 20 * time.Millisecond}
}

func (s *sim) step(ev Event) {
	s.now = ev.At
	r := s.m.Step(ev)
	if r.Changed {
		if r.State == Up {
			s.ups = append(s.ups, ev.At)
		} else {
			s.downs = append(s.downs, ev.At)
			s.downK = append(s.downK, r.K)
		}
	}
	s.timer = r.Timer
	s.last = r
}

// run simulates until end; lost says whether the probe sent at a time is lost.
func (s *sim) run(end time.Time, lost func(at time.Time) bool) {
	for {
		next, kind := s.nextTx, EventSent
		if len(s.replies) > 0 && s.replies[0].at.Before(next) {
			next, kind = s.replies[0].at, EventReply
		}
		if !s.timer.IsZero() && s.timer.Before(next) {
			next, kind = s.timer, EventTimer
		}
		if next.After(end) {
			s.now = end
			return
		}
		switch kind {
		case EventSent:
			s.seq++
			s.step(Event{Kind: EventSent, At: next, Seq: s.seq})
			if !lost(next) {
				s.replies = append(s.replies, simReply{s.seq, next.Add(s.rtt)})
			}
			s.nextTx = next.Add(NextSend(s.m.cfg.Interval, s.rnd))
		case EventReply:
			rp := s.replies[0]
			s.replies = s.replies[1:]
			s.step(Event{Kind: EventReply, At: rp.at, Seq: rp.seq})
		case EventTimer:
			s.step(Event{Kind: EventTimer, At: next})
		}
	}
}

func randomLoss(r *rand.Rand, p float64) func(time.Time) bool {
	return func(time.Time) bool { return r.Float64() < p }
}

// A new link is up as soon as it is steady: it has not flapped, so no
// hold-down applies.
func TestMachineFirstUpWhenSteady(t *testing.T) {
	cfg := Config{Interval: 100 * time.Millisecond}
	s := newSim(t, cfg, 1)
	s.run(t0.Add(10*time.Second), func(time.Time) bool { return false })
	if len(s.ups) != 1 || len(s.downs) != 0 {
		t.Fatalf("ups %v downs %v, want one up", s.ups, s.downs)
	}
	// Steady after the 5th reply: about 4 intervals of at most 125 ms plus
	// the RTT.
	if d := s.ups[0].Sub(t0); d < 300*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("up after %v, want 0.3-0.6 s", d)
	}
	if s.last.K != MinMisses || s.last.Loss != 0 {
		t.Errorf("K %d Loss %v on a clean link, want %d 0", s.last.K, s.last.Loss, MinMisses)
	}
}

// An RTT that grows past the probes' timeout is learnt from the late
// replies: the link is never declared down, and a link whose RTT is long
// from the start comes up. (A jump by more than about K-1 intervals, 10 to
// 350 ms with 100 ms probes, is a down: no reply came within the detection
// time, as with BFD.)
func TestMachineRTTGrowsNoDown(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		from, to    time.Duration
		wantUpBelow time.Duration
	}{
		{"fast 10ms to 200ms", Config{Interval: 100 * time.Millisecond}, 10 * time.Millisecond, 200 * time.Millisecond, time.Second},
		{"fast 300ms from the start", Config{Interval: 100 * time.Millisecond}, 300 * time.Millisecond, 300 * time.Millisecond, 1500 * time.Millisecond},
		{"default 20ms to 500ms", Config{Interval: 250 * time.Millisecond}, 20 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg, 3)
			s.rtt = tc.from
			s.run(t0.Add(10*time.Second), func(time.Time) bool { return false })
			s.rtt = tc.to
			s.run(t0.Add(40*time.Second), func(time.Time) bool { return false })
			if len(s.ups) != 1 || len(s.downs) != 0 {
				t.Fatalf("ups %v downs %v, want one up and no down", s.ups, s.downs)
			}
			if d := s.ups[0].Sub(t0); d > tc.wantUpBelow {
				t.Errorf("up after %v, want below %v", d, tc.wantUpBelow)
			}
			if s.last.Loss != 0 {
				t.Errorf("Loss %v, want 0: delayed probes are not lost", s.last.Loss)
			}
		})
	}
}

// 20 % random loss over 100 000 probes: up, never declared down.
func TestMachineNoFalseDownAt20Percent(t *testing.T) {
	cfg := Config{Interval: 100 * time.Millisecond}
	s := newSim(t, cfg, 2)
	r := rand.New(rand.NewPCG(20, 20))
	s.run(t0.Add(100000*cfg.Interval), randomLoss(r, 0.2))
	if s.seq < 100000 {
		t.Fatalf("only %d probes sent", s.seq)
	}
	if len(s.ups) != 1 || len(s.downs) != 0 {
		t.Fatalf("ups %d, downs %d at %v, want one up and no down", len(s.ups), len(s.downs), s.downs)
	}
	if s.last.Loss < 0.17 || s.last.Loss > 0.23 {
		t.Errorf("Loss %.3f, want about 0.2", s.last.Loss)
	}
	if s.last.K < 10 {
		t.Errorf("K %d at 20%% loss, want at least 10", s.last.K)
	}
}

// A cut is declared down within K intervals plus one timeout, K being the
// threshold the run was judged by.
func TestMachineDetectsCut(t *testing.T) {
	for _, loss := range []float64{0, 0.05, 0.1, 0.2} {
		t.Run(fmt.Sprintf("%.0f%% loss", loss*100), func(t *testing.T) {
			cfg := Config{Interval: 100 * time.Millisecond}
			s := newSim(t, cfg, uint64(loss*1000)+3)
			r := rand.New(rand.NewPCG(7, uint64(loss*1000)))
			cut := t0.Add(120 * time.Second)
			s.run(cut.Add(10*time.Second), func(at time.Time) bool {
				return !at.Before(cut) || r.Float64() < loss
			})
			if len(s.downs) != 1 {
				t.Fatalf("downs %v, want one after the cut at %v", s.downs, cut)
			}
			k := s.downK[0]
			limit := time.Duration(k+1) * cfg.Interval
			if d := s.downs[0].Sub(cut); d < 0 || d > limit {
				t.Errorf("down %v after the cut, want within %v (K %d)", d, limit, k)
			}
			t.Logf("loss %v: K %d, down %v after the cut", loss, k, s.downs[0].Sub(cut))
			if loss <= 0.1 && s.downs[0].Sub(cut) >= time.Second {
				t.Errorf("detection %v at %v loss, want < 1 s with the fast profile", s.downs[0].Sub(cut), loss)
			}
		})
	}
}

// A link cut and repaired again and again: each down within FlapWindow
// doubles the hold-down, up to MaxHoldDown, and the time from repair to up
// grows with it; a long quiet spell brings it back down.
func TestMachineFlappingHoldDownGrows(t *testing.T) {
	cfg := Config{Interval: 100 * time.Millisecond, HoldDown: time.Second, MaxHoldDown: 8 * time.Second, FlapWindow: time.Minute}
	s := newSim(t, cfg, 4)
	// Up 20 s, cut 3 s, repeatedly; the up phases outlast every hold-down.
	period, outage := 23*time.Second, 3*time.Second
	lost := func(at time.Time) bool { return at.Sub(t0)%period >= period-outage }
	s.run(t0.Add(6*period-outage-time.Second), lost)
	if len(s.downs) != 5 || len(s.ups) != 6 {
		t.Fatalf("downs %d ups %d, want 5 and 6", len(s.downs), len(s.ups))
	}
	var waits []time.Duration
	for i := 1; i < len(s.ups); i++ {
		repair := t0.Add(time.Duration(i) * period)
		waits = append(waits, s.ups[i].Sub(repair))
	}
	wantHold := []time.Duration{1, 2, 4, 8, 8}
	for i, w := range waits {
		h := wantHold[i] * time.Second
		if w < h || w > h+time.Second {
			t.Errorf("flap %d: up %v after the repair, want hold-down %v + under 1 s (all: %v)", i+1, w, h, waits)
		}
	}
	// Quiet for 4 flap windows: the hold-down decays to the base.
	s.run(s.now.Add(4*time.Minute), func(time.Time) bool { return false })
	if s.last.HoldDown != cfg.HoldDown {
		t.Errorf("HoldDown %v after 4 quiet minutes, want %v", s.last.HoldDown, cfg.HoldDown)
	}
	if s.last.Flaps != 5 {
		t.Errorf("Flaps %d, want 5", s.last.Flaps)
	}
}
