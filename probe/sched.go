package probe

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

const (
	// sendSlot: when the scheduler wakes for the earliest due probe, it
	// also sends every probe due within sendSlot after it, in one batch. A
	// probe therefore leaves up to sendSlot early, never late: the time
	// between two probes of a target is 75-100 % of its interval (the
	// jitter), minus up to sendSlot.
	sendSlot = 2 * time.Millisecond
	// maxBatch is the most datagrams read or written in one system call.
	maxBatch = 64
	// batchBuf is the buffer for one datagram of a batch read (Prober and
	// Reflector): only a test packet's first PacketLen octets are read
	// whole, what follows (TLVs, which are ignored) is cut off.
	batchBuf = 64
	// maxPending is how many replies the read loop may have queued for the
	// scheduler; beyond that it drops them and counts them as Overrun.
	maxPending = 8192
)

// scheduler sends every target's probes and steps its Machine: the one
// goroutine that owns the sessions (Run's). Probes due and Machine timers
// are kept in two heaps, so one timer wakes it for all targets, and replies
// come from the read loop in batches.
type scheduler struct {
	p     *Prober
	conn  PacketConn
	batch batchConn // conn's batches; nil when it has none
	rng   *rand.Rand

	sends  sessionHeap // every session, by nextSend
	timers sessionHeap // sessions with a Machine timer, by timer
	timer  *time.Timer
	armed  time.Time // when timer fires; zero: stopped

	in    *inbox
	spare []reply // the inbox's other buffer

	one  []byte           // the probe to write, without batches
	out  []message        // probes to write in one batch
	outS []*senderSession // whose each is
}

// inbox is the replies the read loop has read and the scheduler has not
// yet taken. The read loop appends and signals ready; the scheduler swaps
// the slice for an empty one, so neither allocates once they have grown.
type inbox struct {
	ready chan struct{} // 1-buffered: replies are waiting

	// mu guards rs.
	mu sync.Mutex
	rs []reply
}

// put queues rs and reports how many it dropped for want of room.
func (in *inbox) put(rs []reply) (dropped int) {
	in.mu.Lock()
	room := maxPending - len(in.rs)
	if len(rs) > room {
		dropped, rs = len(rs)-room, rs[:room]
	}
	in.rs = append(in.rs, rs...)
	in.mu.Unlock()
	select {
	case in.ready <- struct{}{}:
	default:
	}
	return dropped
}

// take returns the queued replies and keeps spare (emptied) as the next
// buffer.
func (in *inbox) take(spare []reply) []reply {
	clear(spare)
	in.mu.Lock()
	rs := in.rs
	in.rs = spare[:0]
	in.mu.Unlock()
	return rs
}

func newScheduler(p *Prober, conn PacketConn, rng *rand.Rand) *scheduler {
	sc := &scheduler{
		p:     p,
		conn:  conn,
		rng:   rng,
		timer: time.NewTimer(time.Hour),
		in:    &inbox{ready: make(chan struct{}, 1)},
		one:   make([]byte, 0, PacketLen),
		sends: sessionHeap{key: func(s *senderSession) time.Time { return s.nextSend },
			idx: func(s *senderSession) *int { return &s.sendIdx }},
		timers: sessionHeap{key: func(s *senderSession) time.Time { return s.timer },
			idx: func(s *senderSession) *int { return &s.timerIdx }},
	}
	sc.timer.Stop()
	if bc, ok := conn.(batchConn); ok {
		sc.batch = bc
		bufs := make([]byte, maxBatch*PacketLen)
		sc.out = make([]message, 0, maxBatch)
		for i := range maxBatch {
			sc.out = append(sc.out, message{Buf: bufs[i*PacketLen : i*PacketLen : (i+1)*PacketLen]})
		}
		sc.out = sc.out[:0]
		sc.outS = make([]*senderSession, 0, maxBatch)
	}
	return sc
}

// run probes until ctx is cancelled (nil) or the read loop fails (its
// error).
func (sc *scheduler) run(ctx context.Context, readErr <-chan error) error {
	defer sc.timer.Stop()
	sc.sync()
	for {
		sc.arm()
		select {
		case <-ctx.Done():
			return nil
		case <-sc.p.kick:
			sc.sync()
		case err := <-readErr:
			return err
		case <-sc.in.ready:
			sc.receive()
		case <-sc.timer.C:
			sc.armed = time.Time{}
			sc.due(time.Now())
		}
	}
}

// arm sets the timer for the earliest probe or Machine timer due.
func (sc *scheduler) arm() {
	var next time.Time
	if len(sc.sends.s) > 0 {
		next = sc.sends.s[0].nextSend
	}
	if len(sc.timers.s) > 0 && (next.IsZero() || sc.timers.s[0].timer.Before(next)) {
		next = sc.timers.s[0].timer
	}
	switch {
	case next.IsZero():
		if !sc.armed.IsZero() {
			sc.timer.Stop()
			sc.armed = time.Time{}
		}
	case !next.Equal(sc.armed):
		sc.timer.Reset(time.Until(next))
		sc.armed = next
	}
}

// due steps the Machines whose timer is due at now and sends the probes
// due within sendSlot.
func (sc *scheduler) due(now time.Time) {
	for len(sc.timers.s) > 0 && !sc.timers.s[0].timer.After(now) {
		s := sc.timers.s[0]
		sc.stepped(s, s.m.Step(Event{Kind: EventTimer, At: now}))
	}
	horizon := now.Add(sendSlot)
	for len(sc.sends.s) > 0 && !sc.sends.s[0].nextSend.After(horizon) {
		s := sc.sends.s[0]
		at := time.Now()
		r := sc.send(s, at)
		s.nextSend = at.Add(NextSend(s.target.Config.Interval, s.rng))
		heap.Fix(&sc.sends, s.sendIdx)
		sc.stepped(s, r)
	}
	sc.flush()
}

// send sends s's next probe at at, or queues it for the batch.
func (sc *scheduler) send(s *senderSession, at time.Time) Ready {
	if sc.batch == nil {
		b, r := s.send(sc.one[:0], at)
		sc.one = b
		if _, err := sc.conn.WriteTo(b, s.target.Addr); err != nil {
			s.sendError(err)
		}
		return r
	}
	if len(sc.out) == cap(sc.out) {
		sc.flush()
	}
	i := len(sc.out)
	sc.out = sc.out[:i+1]
	b, r := s.send(sc.out[i].Buf[:0], at)
	sc.out[i].Buf, sc.out[i].Addr = b, s.target.Addr
	sc.outS = append(sc.outS, s)
	return r
}

// flush writes the queued probes.
func (sc *scheduler) flush() {
	for i := 0; i < len(sc.out); {
		n, err := sc.batch.WriteBatch(sc.out[i:])
		i += n
		if i < len(sc.out) {
			// sc.out[i] was refused (or, without an error, nothing was
			// sent: give up on it rather than spin).
			sc.outS[i].sendError(err)
			i++
		}
	}
	sc.out = sc.out[:0]
	clear(sc.outS)
	sc.outS = sc.outS[:0]
}

// receive steps the sessions with the replies in the inbox.
func (sc *scheduler) receive() {
	rs := sc.in.take(sc.spare)
	sc.spare = rs
	for _, rp := range rs {
		s := sc.p.sessions[rp.from] // this goroutine is the only writer
		if s == nil {
			sc.p.foreign.Add(1)
			sc.p.log.Debug("dropped: no such target", "from", rp.from)
			continue
		}
		sc.stepped(s, s.receive(rp))
	}
}

// stepped takes a Step's result: the Machine's timer and the Link.
func (sc *scheduler) stepped(s *senderSession, r Ready) {
	s.timer = r.Timer
	switch {
	case r.Timer.IsZero() && s.timerIdx >= 0:
		heap.Remove(&sc.timers, s.timerIdx)
	case r.Timer.IsZero():
	case s.timerIdx >= 0:
		heap.Fix(&sc.timers, s.timerIdx)
	default:
		heap.Push(&sc.timers, s)
	}
	s.update(r)
}

// sync starts and stops sessions to match the targets. The first probe of
// a new session goes out after a random part of an interval, so targets
// added together do not probe in step.
func (sc *scheduler) sync() {
	p := sc.p
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make(map[netip.AddrPort]Target, len(p.targets))
	for _, t := range p.targets {
		want[t.Addr] = t
	}
	for addr, s := range p.sessions {
		if t, ok := want[addr]; ok && t == s.target {
			continue
		}
		heap.Remove(&sc.sends, s.sendIdx)
		if s.timerIdx >= 0 {
			heap.Remove(&sc.timers, s.timerIdx)
		}
		delete(p.sessions, addr)
	}
	now := time.Now()
	for _, t := range p.targets {
		if p.sessions[t.Addr] != nil {
			continue
		}
		s := newSenderSession(t, p, rand.New(rand.NewPCG(sc.rng.Uint64(), sc.rng.Uint64())))
		s.nextSend = now.Add(time.Duration(s.rng.Int64N(int64(t.Config.Interval))))
		heap.Push(&sc.sends, s)
		p.sessions[t.Addr] = s
	}
}

// sessionHeap orders sessions by a time of theirs (key), keeping each
// session's index in it (idx; -1 when not in it) for heap.Fix and Remove.
type sessionHeap struct {
	s   []*senderSession
	key func(*senderSession) time.Time
	idx func(*senderSession) *int
}

func (h *sessionHeap) Len() int           { return len(h.s) }
func (h *sessionHeap) Less(i, j int) bool { return h.key(h.s[i]).Before(h.key(h.s[j])) }
func (h *sessionHeap) Swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	*h.idx(h.s[i]), *h.idx(h.s[j]) = i, j
}
func (h *sessionHeap) Push(x any) {
	s := x.(*senderSession)
	*h.idx(s) = len(h.s)
	h.s = append(h.s, s)
}
func (h *sessionHeap) Pop() any {
	s := h.s[len(h.s)-1]
	h.s[len(h.s)-1] = nil
	h.s = h.s[:len(h.s)-1]
	*h.idx(s) = -1
	return s
}
