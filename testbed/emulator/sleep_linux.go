package emulator

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Waiting for a departure: Go timers fire up to ~1 ms late here (the
// runtime's epoll wait has millisecond resolution), so the scheduler uses
// them only until fineWait before a departure and then calls sleeper.sleep.
// nanosleep itself wakes ~100-200 µs late in this VM (timer slack plus vCPU
// wake-up), so the sleeper naps for the wait minus the overshoot it has
// measured and spins the rest.
const (
	fineWait = 2 * time.Millisecond
	// maxSpin is the longest wait spun without napping first: waits between
	// maxSpin and the overshoot are napped and end late, rather than burn a
	// core at high packet rates.
	maxSpin = 50 * time.Microsecond
)

// sleeper waits precisely; one goroutine owns it.
type sleeper struct {
	overshoot time.Duration // how late nanosleep wakes, moving average
}

func newSleeper() *sleeper { return &sleeper{overshoot: 100 * time.Microsecond} }

// sleep blocks the calling thread for d.
func (s *sleeper) sleep(d time.Duration) {
	deadline := time.Now().Add(d)
	nap := d - s.overshoot
	if nap <= 0 && d > maxSpin {
		nap = d
	}
	if nap > 0 {
		start := time.Now()
		ts := unix.NsecToTimespec(int64(nap))
		for unix.Nanosleep(&ts, &ts) == unix.EINTR {
		}
		s.overshoot += (time.Since(start) - nap - s.overshoot) / 8
	}
	for time.Now().Before(deadline) {
		runtime.Gosched()
	}
}
