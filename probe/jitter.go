package probe

import "time"

// Jitter is the interarrival jitter estimator of RFC 3550 section 6.4.1: for
// two consecutive probes i and j, D = (Rj - Ri) - (Sj - Si), the change in
// transit time, and J += (|D| - J) / 16. The clocks of sender and receiver
// need not agree: their offset cancels in D. The zero value has seen no
// probe.
type Jitter struct {
	j       float64       // nanoseconds
	transit time.Duration // R - S of the previous probe
	samples int
}

// Add returns j updated with one probe sent at sent and received at
// received. Which pair of timestamps the caller passes chooses the
// direction: a STAMP sender's T1 and the reflector's T2 give the forward
// jitter, T3 and T4 the backward one.
func (j Jitter) Add(sent, received time.Time) Jitter {
	transit := received.Sub(sent)
	if j.samples > 0 {
		d := float64(transit - j.transit)
		if d < 0 {
			d = -d
		}
		j.j += (d - j.j) / 16
	}
	j.transit = transit
	j.samples++
	return j
}

// Value returns the jitter estimate; zero until two probes were seen.
func (j Jitter) Value() time.Duration {
	return time.Duration(j.j + 0.5)
}
