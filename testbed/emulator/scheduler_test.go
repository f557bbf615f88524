package emulator

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// wire runs a scheduler under synctest and records what it sends.
type wire struct {
	t        *testing.T
	start    time.Time
	frames   chan frame
	settings chan setting
	sched    *scheduler

	mu   sync.Mutex
	sent []sentFrame
}

type sentFrame struct {
	at   time.Duration // since start
	data string
}

func newWire(t *testing.T, ctx context.Context, imp Impairment) *wire {
	w := &wire{t: t, start: time.Now(), frames: make(chan frame), settings: make(chan setting)}
	w.sched = newScheduler(imp, 1, testRand(), w.send, slog.New(slog.DiscardHandler))
	go w.sched.run(ctx, w.frames, w.settings)
	return w
}

func (w *wire) send(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if string(b) == "refused" {
		return errors.New("no buffer space")
	}
	w.sent = append(w.sent, sentFrame{at: time.Since(w.start), data: string(b)})
	return nil
}

// put hands the scheduler one frame arriving now.
func (w *wire) put(data string) {
	w.frames <- frame{data: []byte(data), arrived: time.Now()}
}

func (w *wire) set(imp Impairment, generation uint64) {
	st := setting{imp: imp, generation: generation, done: make(chan struct{})}
	w.settings <- st
	<-st.done
}

func (w *wire) got() []sentFrame {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.sent)
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSchedulerDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := newWire(t, ctx, Impairment{Delay: ms(50)})
		w.put("a")
		time.Sleep(ms(3))
		w.put("b")
		time.Sleep(ms(100))
		want := []sentFrame{{at: ms(50), data: "a"}, {at: ms(53), data: "b"}}
		if got := w.got(); !slices.Equal(got, want) {
			t.Errorf("sent %v, want %v", got, want)
		}
		if n := w.sched.stats.sent.Load(); n != 2 {
			t.Errorf("sent counter %d, want 2", n)
		}
	})
}

func TestSchedulerRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := newWire(t, ctx, Impairment{Delay: ms(5), RateKbps: 8}) // 1 byte = 1 ms
		w.put("aaaaaaaaaa")                                         // 10 ms on the wire
		w.put("bbbbb")
		time.Sleep(ms(30))
		w.put("c") // link idle again: delay + 1 ms
		time.Sleep(ms(30))
		want := []sentFrame{{at: ms(15), data: "aaaaaaaaaa"}, {at: ms(20), data: "bbbbb"}, {at: ms(36), data: "c"}}
		if got := w.got(); !slices.Equal(got, want) {
			t.Errorf("sent %v, want %v", got, want)
		}
	})
}

// TestSchedulerChange checks that a new impairment applies to frames that
// arrive after it while queued frames keep their schedule, and that the
// generation is published.
func TestSchedulerChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := newWire(t, ctx, Impairment{Delay: ms(50)})
		w.put("slow")
		time.Sleep(ms(10))
		w.set(Impairment{Delay: ms(10)}, 2)
		if g := w.sched.stats.generation.Load(); g != 2 {
			t.Errorf("generation %d after set, want 2", g)
		}
		w.put("fast")
		time.Sleep(ms(100))
		want := []sentFrame{{at: ms(20), data: "fast"}, {at: ms(50), data: "slow"}}
		if got := w.got(); !slices.Equal(got, want) {
			t.Errorf("sent %v, want %v", got, want)
		}
	})
}

func TestSchedulerQueueLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := newWire(t, ctx, Impairment{Delay: time.Second})
		for range queueLimit + 5 {
			w.put("x")
		}
		time.Sleep(2 * time.Second)
		if n := len(w.got()); n != queueLimit {
			t.Errorf("sent %d frames, want %d", n, queueLimit)
		}
		if n := w.sched.stats.queueDrops.Load(); n != 5 {
			t.Errorf("queue drops %d, want 5", n)
		}
	})
}

func TestSchedulerCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := newWire(t, ctx, Impairment{Loss: 100})
		w.put("lost")
		w.set(Impairment{Corrupt: 100}, 2)
		w.put("not ip, cannot be corrupted")
		ipv4 := make([]byte, 41) // Ethernet, IPv4 header, 7 bytes of payload
		ipv4[12], ipv4[14] = 0x08, 0x45
		w.put(string(ipv4))
		w.put("refused")
		synctest.Wait()
		c := w.sched.stats
		got := []uint64{c.sent.Load(), c.lost.Load(), c.queueDrops.Load(), c.corrupted.Load(), c.sendErrors.Load()}
		if want := []uint64{2, 1, 0, 1, 1}; !slices.Equal(got, want) {
			t.Errorf("sent, lost, queue drops, corrupted, send errors = %v, want %v", got, want)
		}
	})
}

// TestSchedulerStops checks that run returns on cancellation with frames
// still queued (synctest.Test fails if any goroutine is left).
func TestSchedulerStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		w := newWire(t, ctx, Impairment{Delay: time.Hour})
		w.put("never")
		time.Sleep(time.Second)
		cancel()
		synctest.Wait()
		if got := w.got(); len(got) != 0 {
			t.Errorf("sent %v after cancel, want nothing", got)
		}
	})
}

// TestSchedulerFineWait checks the precise-sleep path: the last stretch
// before a departure is slept with sleep, and frames arriving meanwhile are
// still taken.
func TestSchedulerFineWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := &wire{t: t, start: time.Now(), frames: make(chan frame, 8), settings: make(chan setting)}
		w.sched = newScheduler(Impairment{Delay: ms(10)}, 1, testRand(), w.send, slog.New(slog.DiscardHandler))
		var slept []time.Duration
		w.sched.fine = ms(2)
		w.sched.sleep = func(d time.Duration) {
			slept = append(slept, d)
			time.Sleep(d)
		}
		go w.sched.run(ctx, w.frames, w.settings)
		w.put("a")
		time.Sleep(ms(9))
		w.put("b")
		time.Sleep(ms(20))
		want := []sentFrame{{at: ms(10), data: "a"}, {at: ms(19), data: "b"}}
		if got := w.got(); !slices.Equal(got, want) {
			t.Errorf("sent %v, want %v", got, want)
		}
		cancel()
		synctest.Wait()
		// Timers up to 2 ms before each departure, then one precise sleep.
		if !slices.Equal(slept, []time.Duration{ms(2), ms(2)}) {
			t.Errorf("slept %v, want [2ms 2ms]", slept)
		}
	})
}
