package emulator

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// frame is one Ethernet frame read from the TAP, stamped when it was read.
type frame struct {
	data    []byte
	arrived time.Time
}

// setting is a new impairment for the scheduler; it closes done once the
// impairment applies to every frame that arrives from then on.
type setting struct {
	imp        Impairment
	generation uint64
	done       chan struct{}
}

// counters are the scheduler's published numbers, read by the status writer.
type counters struct {
	generation atomic.Uint64
	sent       atomic.Uint64
	lost       atomic.Uint64
	queueDrops atomic.Uint64
	corrupted  atomic.Uint64
	sendErrors atomic.Uint64
}

// maxBatch bounds how many ready events one poll takes, so a busy input
// cannot delay departures for long.
const maxBatch = 64

// scheduler delays, drops, corrupts and paces frames. Its run goroutine owns
// every field but stats.
type scheduler struct {
	imp   Impairment
	rng   *rand.Rand
	send  func([]byte) error // transmits one frame on the interface
	stats *counters
	log   *slog.Logger

	// fine is the last stretch before a departure that is waited with sleep
	// rather than a Go timer, which on Linux fires up to ~1 ms late; 0 waits
	// with timers only (tests under synctest).
	fine  time.Duration
	sleep func(time.Duration)

	q    departures
	last time.Time // latest departure scheduled, for rate serialisation
	seq  uint64
}

func newScheduler(imp Impairment, generation uint64, rng *rand.Rand, send func([]byte) error, log *slog.Logger) *scheduler {
	s := &scheduler{imp: imp, rng: rng, send: send, stats: &counters{}, log: log}
	s.stats.generation.Store(generation)
	return s
}

// run schedules frames until ctx is cancelled or frames is closed; frames
// still queued then are dropped, as when a qdisc is deleted.
func (s *scheduler) run(ctx context.Context, frames <-chan frame, settings <-chan setting) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		s.sendDue(now)
		var wake <-chan time.Time
		if len(s.q) > 0 {
			wait := s.q.next().Sub(now)
			if wait <= s.fine {
				s.sleep(wait)
				if !s.poll(ctx, frames, settings) {
					return
				}
				continue
			}
			timer.Reset(wait - s.fine)
			wake = timer.C
		}
		select {
		case f, ok := <-frames:
			if !ok {
				return
			}
			s.enqueue(f)
		case st := <-settings:
			s.apply(st)
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

// poll takes up to maxBatch events that are ready without blocking. It
// returns false when the scheduler must stop.
func (s *scheduler) poll(ctx context.Context, frames <-chan frame, settings <-chan setting) bool {
	for range maxBatch {
		select {
		case f, ok := <-frames:
			if !ok {
				return false
			}
			s.enqueue(f)
		case st := <-settings:
			s.apply(st)
		case <-ctx.Done():
			return false
		default:
			return true
		}
	}
	return true
}

func (s *scheduler) apply(st setting) {
	if s.imp != st.imp {
		s.log.Info("impairment changed", "old", s.imp.String(), "new", st.imp.String(), "generation", st.generation)
	}
	s.imp = st.imp
	s.stats.generation.Store(st.generation)
	close(st.done)
}

func (s *scheduler) enqueue(f frame) {
	v := decide(s.imp, f.arrived, s.last, len(f.data), len(s.q), s.rng)
	switch v.fate {
	case fateLost:
		s.stats.lost.Add(1)
		return
	case fateQueueFull:
		s.stats.queueDrops.Add(1)
		return
	}
	if v.corrupt && corruptFrame(f.data, s.rng) {
		s.stats.corrupted.Add(1)
	}
	if v.depart.After(s.last) {
		s.last = v.depart
	}
	s.seq++
	s.q.push(pending{data: f.data, depart: v.depart, seq: s.seq})
}

// sendDue transmits every frame whose departure is not after now.
func (s *scheduler) sendDue(now time.Time) {
	for len(s.q) > 0 && !s.q.next().After(now) {
		p := s.q.pop()
		if err := s.send(p.data); err != nil {
			s.stats.sendErrors.Add(1)
			s.log.Debug("send failed", "len", len(p.data), "err", err)
			continue
		}
		s.stats.sent.Add(1)
	}
}
