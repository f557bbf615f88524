package probe

import (
	"math/rand/v2"
	"time"
)

// NextSend returns the time to wait before the next probe: interval reduced
// by a random 0-25 % drawn from r, as BFD jitters its packets (RFC 5880
// 6.8.7), so probes of many peers do not synchronise and a detection never
// takes longer than the unjittered intervals.
func NextSend(interval time.Duration, r *rand.Rand) time.Duration {
	return interval - time.Duration(r.Float64()*float64(interval)/4)
}
