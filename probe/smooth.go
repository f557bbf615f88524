package probe

// Smoothed is a link cost with babeld's rule for changes: a degradation
// takes effect at once, an improvement only after it held for a number of
// rounds (and then by the least improvement seen while it held). The zero
// value has seen no cost.
type Smoothed struct {
	// Cost is the smoothed cost, the one to announce.
	Cost Cost
	ok   bool
	cand Cost // the worst of the improving costs seen in a row
	held int  // rounds in a row the cost was below Cost
}

// Update returns s after one round in which the instantaneous cost was
// instant; an improvement is taken once it was seen in hold rounds in a row
// (hold <= 1: at once).
func (s Smoothed) Update(instant Cost, hold int) Smoothed {
	if !s.ok || instant >= s.Cost {
		return Smoothed{Cost: instant, ok: true}
	}
	if s.held == 0 {
		s.cand = instant
	} else {
		s.cand = max(s.cand, instant)
	}
	s.held++
	if s.held >= hold {
		return Smoothed{Cost: s.cand, ok: true}
	}
	return s
}

// Better reports whether a route over a new link should replace the current
// one: only when both its instantaneous and its smoothed cost are lower, so
// neither a momentary dip nor a stale average moves traffic.
func Better(newInstant, newSmoothed, curInstant, curSmoothed Cost) bool {
	return newInstant < curInstant && newSmoothed < curSmoothed
}
