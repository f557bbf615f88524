package tunnel

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/roamnet/roam/api/roampb"
)

// negotiation is one ICE session with the peer.
type negotiation struct {
	gen         uint64
	s           *Session
	started     time.Time
	cands       []string      // local candidates gathered so far
	sent        bool          // our offer or answer went out
	pending     []string      // the peer's candidates that came before its credentials
	remoteCands int           // the peer's candidates added
	remote      bool          // the peer's credentials are known and checks started
	sendAt      time.Time     // send the credentials now even if gathering goes on
	resend      time.Time     // retransmit the offer; zero: not waiting for an answer
	retry       time.Duration // the next retransmission interval
	deadline    time.Time     // give up the offer or the checks; zero: none
}

// runState is Direct.Run's state; only its goroutine touches it.
type runState struct {
	d        *Direct
	n        *negotiation // nil between sessions
	failures int          // in a row, for the backoff
	retryAt  time.Time    // retry after a failure; zero: none
	lastGen  uint64       // the newest generation started or answered
	asked    time.Time    // when this (controlled) end last asked for a restart

	// A controlled end asks for a restart until an offer of a newer
	// generation comes, retransmitting like an offer.
	ask      *roampb.Signal // the request; nil when not asking
	askAt    time.Time      // retransmit it then
	askRetry time.Duration
	askUntil time.Time // stop asking then (the controlling end retries on its own)

	// The peer's candidates of a newer generation than this controlled
	// end has answered: its candidates overtook its offer.
	earlyGen uint64
	early    []string
}

// maxRemoteCandidates bounds the candidates taken from the peer per
// session (RFC 8445 suggests at most 100 candidate pairs).
const maxRemoteCandidates = 100

// Run negotiates until ctx ends, then closes the session.
func (d *Direct) Run(ctx context.Context) error {
	r := &runState{d: d}
	defer r.end()
	r.restart(ReasonStart)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(time.Until(r.next()))
		select {
		case <-ctx.Done():
			return nil
		case reason := <-d.restarts:
			r.failures = 0
			r.restart(reason)
		case m := <-d.signals:
			r.signal(m)
		case ev := <-d.events:
			if r.n != nil && ev.gen == r.n.gen {
				r.event(ev)
			}
		case <-timer.C:
			r.tick(time.Now())
		}
	}
}

// next is the time of the next timer event.
func (r *runState) next() time.Time {
	next := r.retryAt
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if r.ask != nil {
		earlier(r.askAt)
	}
	if n := r.n; n != nil {
		if !n.sent {
			earlier(n.sendAt)
		}
		earlier(n.resend)
		earlier(n.deadline)
	}
	if next.IsZero() {
		return time.Now().Add(time.Hour)
	}
	return next
}

func (r *runState) tick(now time.Time) {
	n := r.n
	switch {
	case n != nil && !n.deadline.IsZero() && !now.Before(n.deadline):
		if n.remote {
			r.fail("no candidate pair works")
		} else {
			r.fail("the peer did not answer the offer")
		}
	case n != nil && !n.sent && !now.Before(n.sendAt):
		r.sendCredentials()
	case n != nil && !n.resend.IsZero() && !now.Before(n.resend):
		r.d.send(r.reply()) // with the candidates gathered since
		n.retry *= 2
		n.resend = now.Add(n.retry)
	case r.ask != nil && !now.Before(r.askAt):
		if now.After(r.askUntil) {
			r.ask = nil
			break
		}
		r.d.send(r.ask)
		r.askRetry *= 2
		r.askAt = now.Add(r.askRetry)
	case n == nil && !r.retryAt.IsZero() && !now.Before(r.retryAt):
		r.retryAt = time.Time{}
		r.restart(ReasonRetry)
	}
}

func (r *runState) end() {
	if r.n != nil {
		r.n.s.Close()
		r.n = nil
	}
}

// begin starts the session of generation gen.
func (r *runState) begin(gen uint64) error {
	r.end()
	s, err := r.d.cfg.ICE.NewSession(r.d.cfg.Controlling, r.d.sessionEvents(gen))
	if err != nil {
		return err
	}
	now := time.Now()
	r.n = &negotiation{gen: gen, s: s, started: now, sendAt: now.Add(gatherWait)}
	r.lastGen = max(r.lastGen, gen)
	r.retryAt = time.Time{}
	r.d.setStatus(func(st *PathStatus) {
		st.Sessions++
		st.Retry = time.Time{}
		st.State, st.Since = PathChecking, now
	})
	return nil
}

// fail ends the session and schedules a retry with backoff: 1 s doubling
// to a minute, spread by ±20 %.
func (r *runState) fail(why string) {
	r.end()
	r.failures++
	delay := min(retryMin<<min(r.failures-1, 6), retryMax)
	delay = delay*4/5 + rand.N(delay*2/5+1)
	r.retryAt = time.Now().Add(delay)
	r.d.log.Info("direct path: session failed", "why", why, "retry_in", delay.Round(time.Millisecond), "failures", r.failures)
	r.d.setStatus(func(st *PathStatus) {
		st.State, st.Since, st.Pair, st.Selected, st.LastError, st.Retry = PathFailed, time.Now(), Pair{}, time.Time{}, why, r.retryAt
	})
}

// restart starts a new session (controlling end) or asks the peer for one
// (controlled end).
func (r *runState) restart(reason string) {
	if r.n != nil && time.Since(r.n.started) < restartHold {
		return
	}
	if !r.d.cfg.Controlling {
		now := time.Now()
		r.asked = now
		r.ask = &roampb.Signal{Body: &roampb.Signal_Restart{Restart: &roampb.IceRestart{Reason: reason}}}
		r.askRetry, r.askAt, r.askUntil = offerRetry, now.Add(offerRetry), now.Add(offerGiveUp)
		r.d.send(r.ask)
		return
	}
	gen := uint64(time.Now().UnixNano())
	if gen <= r.lastGen {
		gen = r.lastGen + 1
	}
	r.d.log.Debug("direct path: new session", "reason", reason, "session", gen)
	if err := r.begin(gen); err != nil {
		r.fail(err.Error())
	}
}

// sendCredentials sends the offer (controlling) or answer (controlled)
// with the candidates gathered so far.
func (r *runState) sendCredentials() {
	n := r.n
	if r.d.cfg.Controlling {
		n.retry = offerRetry
		n.resend = time.Now().Add(n.retry)
		n.deadline = time.Now().Add(offerGiveUp)
	}
	n.sent = true
	r.d.send(r.reply())
}

// reply is the offer (controlling) or answer (controlled) of the current
// session with every candidate gathered so far: a retransmission also
// carries those that went out in candidates messages, which may have been
// lost.
func (r *runState) reply() *roampb.Signal {
	n := r.n
	ufrag, pwd := n.s.Credentials()
	cands := append([]string(nil), n.cands...)
	if r.d.cfg.Controlling {
		return &roampb.Signal{Session: n.gen, Body: &roampb.Signal_Offer{Offer: &roampb.IceOffer{Ufrag: ufrag, Pwd: pwd, Candidates: cands}}}
	}
	return &roampb.Signal{Session: n.gen, Body: &roampb.Signal_Answer{Answer: &roampb.IceAnswer{Ufrag: ufrag, Pwd: pwd, Candidates: cands}}}
}

// addRemote adds the peer's candidates to the session, up to
// maxRemoteCandidates in all.
func (r *runState) addRemote(cands []string) {
	n := r.n
	room := maxRemoteCandidates - n.remoteCands
	if len(cands) > room {
		r.d.log.Info("direct path: the peer sent too many candidates; the rest are left out", "max", maxRemoteCandidates)
		cands = cands[:max(room, 0)]
	}
	n.remoteCands += len(cands)
	if err := n.s.AddRemote(cands); err != nil {
		r.d.log.Info("direct path: bad candidates from the peer", "err", err)
	}
}

// startChecks takes the peer's credentials and candidates and starts the
// connectivity checks.
func (r *runState) startChecks(ufrag, pwd string, cands []string) {
	n := r.n
	r.addRemote(append(n.pending, cands...))
	n.pending = nil
	n.remote = true
	n.resend = time.Time{}
	n.deadline = time.Now().Add(checkGiveUp)
	n.s.Start(ufrag, pwd)
}

// signal handles a message from the peer.
func (r *runState) signal(m *roampb.Signal) {
	n := r.n
	switch b := m.GetBody().(type) {
	case *roampb.Signal_Offer:
		if r.d.cfg.Controlling {
			r.d.log.Debug("direct path: offer from the peer, but this end controls: ignored")
			return
		}
		if n != nil && m.GetSession() == n.gen {
			if n.sent {
				r.d.send(r.reply()) // our answer was lost
			}
			return
		}
		if m.GetSession() <= r.lastGen && n != nil {
			// An old offer, retransmitted or reordered. With no session
			// (none yet, or the last one failed) it is taken anyway: a
			// controlling peer restarted with its clock stepped back offers
			// lower generations, which would be ignored until its clock
			// passed the old ones; a stale offer only starts a session
			// that fails.
			return
		}
		if st := r.d.Status().State; (st == PathConnected || st == PathDisconnected) && time.Since(r.asked) > offerGiveUp {
			r.peerRestarted("new offer")
		}
		r.ask = nil
		if err := r.begin(m.GetSession()); err != nil {
			r.fail(err.Error())
			return
		}
		if r.earlyGen == m.GetSession() {
			r.n.pending = r.early
		}
		r.earlyGen, r.early = 0, nil
		r.startChecks(b.Offer.GetUfrag(), b.Offer.GetPwd(), b.Offer.GetCandidates())
	case *roampb.Signal_Answer:
		if !r.d.cfg.Controlling || n == nil || m.GetSession() != n.gen || n.remote {
			return
		}
		r.startChecks(b.Answer.GetUfrag(), b.Answer.GetPwd(), b.Answer.GetCandidates())
	case *roampb.Signal_Candidates:
		cands := b.Candidates.GetCandidates()
		switch {
		case !r.d.cfg.Controlling && m.GetSession() > r.lastGen:
			// Ahead of the offer they belong to: kept for it.
			if m.GetSession() != r.earlyGen {
				r.earlyGen, r.early = m.GetSession(), nil
			}
			r.early = append(r.early, cands[:min(len(cands), maxRemoteCandidates-len(r.early))]...)
		case n == nil || m.GetSession() != n.gen:
		case !n.remote:
			n.pending = append(n.pending, cands[:min(len(cands), maxRemoteCandidates-len(n.pending))]...)
		default:
			r.addRemote(cands)
		}
	case *roampb.Signal_Restart:
		if r.d.cfg.Controlling {
			if reason := b.Restart.GetReason(); reason != ReasonStart && reason != ReasonRetry {
				r.peerRestarted(reason)
			}
			r.failures = 0
			r.restart("peer: " + b.Restart.GetReason())
		}
	}
}

func (r *runState) peerRestarted(reason string) {
	r.d.log.Info("direct path: the peer restarted ICE", "reason", reason)
	if r.d.cfg.OnPeerRestart != nil {
		r.d.cfg.OnPeerRestart(reason)
	}
}

// event handles a callback of the current session.
func (r *runState) event(ev sessionEvent) {
	n := r.n
	switch {
	case ev.cand != "":
		n.cands = append(n.cands, ev.cand)
		if n.sent {
			r.d.send(&roampb.Signal{Session: n.gen, Body: &roampb.Signal_Candidates{Candidates: &roampb.IceCandidates{Candidates: []string{ev.cand}}}})
		}
	case ev.gathered:
		if !n.sent {
			r.sendCredentials()
		}
	case ev.pair != nil:
		r.failures = 0
		n.deadline = time.Time{}
		r.d.log.Info("direct path: connected", "pair", ev.pair.String(), "took", time.Since(n.started).Round(time.Millisecond))
		r.d.setStatus(func(st *PathStatus) {
			now := time.Now()
			st.State, st.Since, st.Selected, st.Pair, st.LastError = PathConnected, now, now, *ev.pair, ""
		})
	case ev.state == "failed":
		r.fail("ice: the selected pair stopped answering")
	case ev.state == "disconnected":
		r.d.setStatus(func(st *PathStatus) { st.State, st.Since = PathDisconnected, time.Now() })
	case ev.state == "connected" || ev.state == "completed":
		r.d.setStatus(func(st *PathStatus) {
			if st.State == PathDisconnected {
				st.State, st.Since = PathConnected, time.Now()
			}
		})
	}
}
