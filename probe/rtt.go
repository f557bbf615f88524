package probe

import "time"

// RTT is a round-trip time estimator per RFC 6298 section 2: a smoothed
// round-trip time and its variation, updated with gains alpha = 1/8 and
// beta = 1/4. The zero value has seen no sample.
type RTT struct {
	// SRTT is the smoothed round-trip time.
	SRTT time.Duration
	// RTTVar is the round-trip time variation.
	RTTVar time.Duration
	// Samples counts the samples taken.
	Samples int
}

// Add returns r updated with one round-trip sample. The first sample sets
// SRTT to it and RTTVar to half of it; later ones update RTTVar from the old
// SRTT first, then SRTT, as RFC 6298 (2.3) orders it. Negative samples (a
// clock step) are ignored.
func (r RTT) Add(sample time.Duration) RTT {
	if sample < 0 {
		return r
	}
	if r.Samples == 0 {
		return RTT{SRTT: sample, RTTVar: sample / 2, Samples: 1}
	}
	diff := r.SRTT - sample
	if diff < 0 {
		diff = -diff
	}
	r.RTTVar = (3*r.RTTVar + diff) / 4
	r.SRTT = (7*r.SRTT + sample) / 8
	r.Samples++
	return r
}

// RTO returns the retransmission timeout SRTT + max(g, 4*RTTVar) of RFC 6298
// (2.3), with g the clock granularity, and at least floor. With no sample yet
// it returns floor.
func (r RTT) RTO(g, floor time.Duration) time.Duration {
	if r.Samples == 0 {
		return floor
	}
	rto := r.SRTT + max(g, 4*r.RTTVar)
	return max(rto, floor)
}
