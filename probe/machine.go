package probe

import (
	"math"
	"math/bits"
	"time"
)

// Machine is one peer's up/down state, stepped over events (raft's Step ->
// Ready): it reads no clock and owns no goroutine. Its owner sends probes,
// feeds it what happened, and steps an EventTimer at Ready.Timer.
//
// A probe is missed when no reply came within its timeout: the RFC 6298
// retransmission timeout of the replies so far, at least half an interval
// and at most four. The link goes down after K misses in a row, K chosen by
// MissThreshold from the loss (plus one standard error) when the run
// began; the loss is measured over the last 4 x Window probes (at most
// MaxWindow), the chance of a false down bounded per Window. It comes up when at least UpNeed of the last UpOf probes were
// answered, at once the first time and otherwise once that stayed so for the
// hold-down, which doubles when the
// link goes down again within FlapWindow (up to MaxHoldDown) and halves for
// each FlapWindow without a down.
type Machine struct {
	cfg   Config
	state State

	rtt     RTT
	pending []outstanding // probes in the order sent
	expired [64]expiredProbe
	nout    uint64 // outcomes so far
	runFrom uint64 // the outcome number of the current run's first miss

	win  Window // the last 4 x Window outcomes, outage runs left out
	run  int    // misses in a row
	k    int    // threshold for the current run
	last uint64 // the last outcomes in order resolved, newest in bit 0
	nlst int

	steadySince time.Time // zero: not steady
	hold        time.Duration
	lastDown    time.Time
	flaps       int
}

type outstanding struct {
	seq      uint32
	sent     time.Time
	deadline time.Time
}

// expiredProbe is a probe counted missed, kept so that a reply that comes
// after all can still teach the RTT and undo the miss.
type expiredProbe struct {
	ok     bool
	seq    uint32
	sent   time.Time
	n      uint64 // its outcome number
	inLoss bool   // counted in the loss window (its run was shorter than K)
}

// NewMachine returns a Machine for a peer whose link is down until probes
// say otherwise.
func NewMachine(cfg Config) (*Machine, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	m := &Machine{cfg: cfg, win: NewWindow(min(4*cfg.Window, MaxWindow)), hold: cfg.HoldDown}
	m.k = m.threshold()
	return m, nil
}

// Step applies one event and returns the result. Probes whose timeout
// passed by ev.At are counted missed first.
func (m *Machine) Step(ev Event) Ready {
	before := m.state
	now := ev.At
	m.expire(now)
	late := 0
	switch ev.Kind {
	case EventSent:
		m.pending = append(m.pending, outstanding{seq: ev.Seq, sent: now, deadline: now.Add(m.timeout())})
	case EventReply:
		i := m.find(ev.Seq)
		if i < 0 {
			if !m.undoMiss(ev.Seq, now) {
				late++
			}
			break
		}
		m.rtt = m.rtt.Add(now.Sub(m.pending[i].sent))
		m.pending = append(m.pending[:i], m.pending[i+1:]...)
		m.outcome(now, true)
	}
	m.maybeUp(now)
	return m.ready(before, now, late)
}

func (m *Machine) find(seq uint32) int {
	for i, p := range m.pending {
		if p.seq == seq {
			return i
		}
	}
	return -1
}

// expire counts every probe whose deadline passed by now as missed.
func (m *Machine) expire(now time.Time) {
	kept := m.pending[:0]
	for _, p := range m.pending {
		if p.deadline.After(now) {
			kept = append(kept, p)
			continue
		}
		m.expired[p.seq%uint32(len(m.expired))] = expiredProbe{ok: true, seq: p.seq, sent: p.sent, n: m.nout}
		m.outcome(p.deadline, false)
	}
	m.pending = kept
}

// undoMiss takes a reply to a probe already counted missed: its round trip
// is a sample (without it a link whose RTT grew past the timeout would
// never learn the new RTT), and if the probe is in the current run of
// misses, it was delayed, not lost: the run restarts after it. A link
// already declared down stays down. It reports whether seq was such a
// probe.
func (m *Machine) undoMiss(seq uint32, now time.Time) bool {
	e := &m.expired[seq%uint32(len(m.expired))]
	if !e.ok || e.seq != seq {
		return false
	}
	e.ok = false
	m.rtt = m.rtt.Add(now.Sub(e.sent))
	if m.run == 0 || e.n < m.runFrom {
		// Its run already ended: if it was counted as a loss, it is a
		// reply after all.
		if e.inLoss {
			m.win = m.win.Found()
			if pos := m.nout - 1 - e.n; pos < 64 {
				m.last |= 1 << pos
			}
			m.checkSteady(now)
		}
		return true
	}
	before := int(e.n - m.runFrom) // misses in the run before it
	after := m.run - before - 1
	if before < m.k {
		m.countLosses(m.runFrom, before)
	}
	m.win = m.win.Add(true)
	m.run = after
	m.runFrom = e.n + 1
	if after < 64 {
		m.last |= 1 << after
	}
	m.checkSteady(now)
	return true
}

// countLosses adds the n misses from outcome number from on to the loss
// window, and marks them so that a late reply can take one back.
func (m *Machine) countLosses(from uint64, n int) {
	for i := range n {
		m.win = m.win.Add(false)
		num := from + uint64(i)
		for j := range m.expired {
			if e := &m.expired[j]; e.ok && e.n == num {
				e.inLoss = true
				break
			}
		}
	}
}

// timeout is how long a probe sent now may wait for its reply.
// Before the first reply it is the longest, so that a link with a long RTT
// can come up.
func (m *Machine) timeout() time.Duration {
	if m.rtt.Samples == 0 {
		return 4 * m.cfg.Interval
	}
	return min(m.rtt.RTO(time.Millisecond, m.cfg.Interval/2), 4*m.cfg.Interval)
}

// outcome records one probe's fate at time at.
func (m *Machine) outcome(at time.Time, received bool) {
	m.nout++
	m.last = m.last<<1 | b2u(received)
	m.nlst = min(m.nlst+1, 64)
	if received {
		if m.run < m.k {
			m.countLosses(m.runFrom, m.run)
		}
		m.run = 0
		m.win = m.win.Add(true)
	} else {
		if m.run == 0 {
			m.k = m.threshold()
			m.runFrom = m.nout - 1
		}
		m.run++
		if m.state == Up && m.run >= m.k {
			m.down(at)
		}
	}
	m.checkSteady(at)
}

// checkSteady starts or ends the steady period at at.
func (m *Machine) checkSteady(at time.Time) {
	if m.steady() {
		if m.steadySince.IsZero() {
			m.steadySince = at
		}
	} else {
		m.steadySince = time.Time{}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// steady reports whether UpNeed of the last UpOf outcomes were replies.
func (m *Machine) steady() bool {
	if m.nlst < m.cfg.UpOf {
		return false
	}
	mask := uint64(1)<<m.cfg.UpOf - 1
	if m.cfg.UpOf == 64 {
		mask = math.MaxUint64
	}
	n := 0
	for v := m.last & mask; v != 0; v &= v - 1 {
		n++
	}
	return n >= m.cfg.UpNeed
}

// threshold chooses K from the measured loss plus one standard error, so a
// window that happened to see less loss than the link has does not make K
// too small.
func (m *Machine) threshold() int {
	p := m.win.Loss()
	se := math.Sqrt(p * (1 - p) / float64(max(m.win.Count(), 1)))
	p += se
	// The latest outcomes tell of a loss that just began, which the long
	// window takes a minute to show: without them a link that had been
	// clean went down at the first run of K=4 losses 2 % of the time when
	// 20 % loss began (TestMachineLossOnset). A window of 64 keeps the
	// threshold steady enough at 10 % loss for a cut to be seen in under a
	// second (p95) on the fast profile.
	// A run's own first miss is not counted: it is what is being judged.
	last, nlst := m.last, m.nlst
	if m.run > 0 || (nlst > 0 && last&1 == 0) {
		last, nlst = last>>1, nlst-1
	}
	if n := min(nlst, recentOutcomes); n > 0 {
		mask := uint64(math.MaxUint64)
		if n < 64 {
			mask = 1<<n - 1
		}
		got := bits.OnesCount64(last & mask)
		p = max(p, float64(n-got)/float64(n))
	}
	return MissThreshold(min(p, 1), m.cfg.Window, m.cfg.Target)
}

// recentOutcomes is how many of the latest outcomes also set the loss the
// miss threshold is chosen from.
const recentOutcomes = 64

func (m *Machine) down(at time.Time) {
	cur := m.holdDown(at)
	if !m.lastDown.IsZero() && at.Sub(m.lastDown) < m.cfg.FlapWindow {
		m.hold = min(2*cur, m.cfg.MaxHoldDown)
	} else {
		m.hold = m.cfg.HoldDown
	}
	m.lastDown = at
	m.flaps++
	m.state = Down
}

// holdDown is the hold-down at now: the doubled one, halved for each
// FlapWindow since the last down, never below HoldDown.
func (m *Machine) holdDown(now time.Time) time.Duration {
	h := m.hold
	if !m.lastDown.IsZero() && m.cfg.FlapWindow > 0 {
		for q := now.Sub(m.lastDown) / m.cfg.FlapWindow; q > 0 && h > m.cfg.HoldDown; q-- {
			h /= 2
		}
	}
	return max(h, m.cfg.HoldDown)
}

// maybeUp brings a steady link up: at once the first time (a link that was
// never up has not flapped), after the hold-down once it has gone down.
func (m *Machine) maybeUp(now time.Time) {
	if m.state != Down || m.steadySince.IsZero() {
		return
	}
	if m.flaps == 0 || now.Sub(m.steadySince) >= m.holdDown(now) {
		m.state = Up
	}
}

func (m *Machine) ready(before State, now time.Time, late int) Ready {
	r := Ready{
		State:    m.state,
		Changed:  m.state != before,
		Misses:   m.run,
		K:        m.k,
		Loss:     m.win.Loss(),
		HoldDown: m.holdDown(now),
		Flaps:    m.flaps,
		Late:     late,
	}
	if m.run == 0 {
		r.K = m.threshold()
	}
	for _, p := range m.pending {
		if r.Timer.IsZero() || p.deadline.Before(r.Timer) {
			r.Timer = p.deadline
		}
	}
	if m.state == Down && !m.steadySince.IsZero() {
		if up := m.steadySince.Add(r.HoldDown); r.Timer.IsZero() || up.Before(r.Timer) {
			r.Timer = up
		}
	}
	return r
}
