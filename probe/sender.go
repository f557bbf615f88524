package probe

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// costHold is how long an improvement of a link's cost must hold before the
// smoothed cost takes it (a degradation counts at once).
const costHold = 2 * time.Second

// senderErrorEstimate describes our clock in the probes: not known to be
// synchronised, NTP format. Only round trips are computed, in which the
// offset between the two clocks cancels.
var senderErrorEstimate = NewErrorEstimate(false, false, time.Millisecond)

type reply struct {
	from netip.AddrPort // the source, unmapped
	pkt  ReflectorPacket
	at   time.Time // T4
}

// senderSession probes one target. The scheduler's goroutine owns every
// field but the snapshot, which it publishes under mu.
type senderSession struct {
	target Target
	p      *Prober
	rng    *rand.Rand

	nextSend time.Time // when the next probe is due
	timer    time.Time // the Machine's Ready.Timer; zero: none
	sendIdx  int       // in the scheduler's sends heap
	timerIdx int       // in its timers heap; -1: not there

	m        *Machine
	ssid     uint16
	seq      uint32
	sentAt   [64]sentProbe // by seq % 64: a probe times out within 4 intervals
	rtt      RTT
	jitter   Jitter
	dir      Directions
	upAt     time.Time // when the link last came up: earlier probes are not timed
	stateful bool      // the reflector showed its own sequence counter
	smooth   Smoothed
	link     Link // the figures, published by update
	told     Link // what OnChange was last given

	mu   sync.Mutex
	snap Link
}

type sentProbe struct {
	seq uint32
	at  time.Time
}

func newSenderSession(t Target, p *Prober, rng *rand.Rand) *senderSession {
	m, err := NewMachine(t.Config)
	if err != nil {
		panic(err) // SetTargets validated the config
	}
	s := &senderSession{
		target:   t,
		p:        p,
		rng:      rng,
		sendIdx:  -1,
		timerIdx: -1,
		m:        m,
		ssid:     uint16(rng.IntN(1<<16-1)) + 1,
		dir:      NewDirections(t.Config.Window),
	}
	s.link = Link{Target: t, State: Down, Cost: InfiniteCost, Instant: InfiniteCost}
	s.snap, s.told = s.link, s.link
	return s
}

func (s *senderSession) snapshot() Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// send appends the next probe, sent at at, to buf and steps the Machine
// with it. The caller writes the probe to the target.
func (s *senderSession) send(buf []byte, at time.Time) ([]byte, Ready) {
	seq := s.seq
	s.seq++
	pkt := SenderPacket{Seq: seq, Timestamp: NTPTimestamp(at), ErrorEstimate: senderErrorEstimate, SSID: s.ssid}
	buf, _ = pkt.AppendBinary(buf)
	s.sentAt[seq%64] = sentProbe{seq, at}
	s.link.Sent++
	r := s.m.Step(Event{Kind: EventSent, At: at, Seq: seq})
	s.roundCost(r)
	return buf, r
}

// sendError counts a probe the socket refused; it counts as lost.
func (s *senderSession) sendError(err error) {
	s.p.sendErrors.Add(1)
	s.p.log.Debug("probe not sent", "peer", s.target.Name, "to", s.target.Addr, "err", err)
}

// receive steps the Machine with a reply and, when it answered an
// outstanding probe, feeds the estimators.
func (s *senderSession) receive(rp reply) Ready {
	pkt := rp.pkt
	if pkt.SSID != s.ssid {
		s.p.foreign.Add(1)
		return s.m.Step(Event{Kind: EventTimer, At: rp.at})
	}
	r := s.m.Step(Event{Kind: EventReply, At: rp.at, Seq: pkt.SenderSeq})
	sent := s.sentAt[pkt.SenderSeq%64]
	if r.Late > 0 || sent.seq != pkt.SenderSeq {
		return r
	}
	s.link.Replies++
	// The reflector's own delay is left out when its timestamps make
	// sense; otherwise the whole round trip counts.
	rtt := RoundTrip(sent.at, pkt.ErrorEstimate.Time(pkt.ReceiveTimestamp), pkt.ErrorEstimate.Time(pkt.Timestamp), rp.at)
	if whole := rp.at.Sub(sent.at); rtt <= 0 || rtt > whole {
		rtt = whole
	}
	if !sent.at.Before(s.upAt) {
		s.rtt = s.rtt.Add(rtt)
		s.jitter = s.jitter.Add(sent.at, sent.at.Add(rtt))
	}
	if pkt.Seq != pkt.SenderSeq {
		s.stateful = true
	}
	s.dir = s.dir.Add(pkt.SenderSeq, pkt.Seq)
	return r
}

// roundCost updates the smoothed cost once per probe round from the figures
// so far.
func (s *senderSession) roundCost(r Ready) {
	if r.State != Up {
		return
	}
	s.link.Instant = s.instantCost(r)
	rounds := max(3, int((costHold+s.target.Config.Interval-1)/s.target.Config.Interval))
	s.smooth = s.smooth.Update(s.link.Instant, rounds)
	s.link.Cost = s.smooth.Cost
}

func (s *senderSession) instantCost(r Ready) Cost {
	fwd, bwd := r.Loss, 0.0
	if f, b, ok := s.dir.Loss(); ok && s.stateful {
		fwd, bwd = f, b
	}
	return s.p.cfg.Cost.Cost(fwd, bwd, s.rtt.SRTT)
}

// update takes the Machine's result into the published Link, logs a state
// change and tells OnChange when the state or the cost changed.
func (s *senderSession) update(r Ready) {
	l := &s.link
	before := *l
	if r.Changed && r.State == Up {
		// A link that comes up times only the probes sent from now on: the
		// earlier ones may have waited for a WireGuard handshake (the
		// tunnel queues packets until it has keys), seconds that say
		// nothing of the path. Until the next reply it pays no RTT
		// penalty; a slow path costs more one round later.
		s.rtt, s.jitter, s.upAt = RTT{}, Jitter{}, time.Now()
	}
	l.State, l.Misses, l.DownAfter, l.HoldDown = r.State, r.Misses, r.K, r.HoldDown
	l.Loss, l.RTT, l.Jitter = r.Loss, s.rtt, s.jitter.Value()
	l.Flaps = uint64(r.Flaps)
	if f, b, ok := s.dir.Loss(); ok && s.stateful {
		l.Forward, l.Backward, l.Directions = f, b, true
	}
	if r.Changed {
		now := time.Now()
		l.Since = now
		l.Transitions++
		if r.State == Up {
			// A link that comes up starts from its current figures.
			l.Instant = s.instantCost(r)
			s.smooth = Smoothed{}.Update(l.Instant, 1)
			l.Cost = s.smooth.Cost
		} else {
			// An outage is not loss: the directions start afresh, as the
			// Machine leaves outages out of its loss.
			s.dir = NewDirections(s.target.Config.Window)
			s.smooth = Smoothed{}
			l.Cost, l.Instant = InfiniteCost, InfiniteCost
		}
		s.p.log.Info("link "+before.State.String()+" -> "+r.State.String(), "peer", s.target.Name,
			"addr", s.target.Addr.Addr(), "misses", r.Misses, "down_after", r.K,
			"loss", roundTo(r.Loss, 3), "rtt", s.rtt.SRTT.Round(10*time.Microsecond),
			"hold_down", r.HoldDown, "flaps", r.Flaps, "cost", l.Cost)
	}
	s.mu.Lock()
	s.snap = *l
	s.mu.Unlock()
	if s.p.cfg.OnChange != nil && (l.State != s.told.State || l.Cost != s.told.Cost) {
		s.told = *l
		s.p.cfg.OnChange(*l)
	}
}

func roundTo(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}
