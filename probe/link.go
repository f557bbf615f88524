package probe

import (
	"net/netip"
	"time"
)

// Target is a peer to probe.
type Target struct {
	// Name is the peer's name, for logs and reports. Required.
	Name string
	// Addr is the peer's reflector: its overlay address and STAMPPort.
	// Required; unique among a Prober's targets.
	Addr netip.AddrPort
	// Profile names Config.Interval for reports ("fast", "default",
	// "metered"; "" when the interval is custom).
	Profile string
	// Config says how the peer's up/down state is decided.
	Config Config
}

// Link is what a Prober knows of one target: the figures from its probes, its
// state and its cost.
type Link struct {
	Target Target
	// State is up or down; a link starts down and comes up once probes
	// are answered steadily.
	State State
	// Since is when State last changed; zero if it never did.
	Since time.Time
	// Flaps counts up -> down changes; Transitions all changes.
	Flaps, Transitions uint64
	// RTT is the STAMP round trip (without the reflector's own delay):
	// RFC 6298 SRTT and RTTVAR. RTT.Samples is 0 before the first reply.
	RTT RTT
	// Jitter is the RFC 3550 interarrival jitter of the round trips.
	Jitter time.Duration
	// Loss is the round-trip loss fraction over the recent probes (the
	// last 4 x Config.Window), outages left out.
	Loss float64
	// Forward and Backward are the loss fractions towards the peer and
	// back, known (Directions true) once the peer's reflector showed that
	// it keeps its own sequence counter and two replies came.
	Forward, Backward float64
	Directions        bool
	// Cost is the smoothed cost routing uses: degradations at once,
	// improvements once they held (see Smoothed). InfiniteCost while down.
	Cost Cost
	// Instant is the cost from the latest figures.
	Instant Cost
	// Sent counts probes sent, Replies the replies that matched one.
	Sent, Replies uint64
	// Misses is the number of probes lost in a row now; DownAfter the
	// number of misses in a row that would declare the link down now.
	Misses, DownAfter int
	// HoldDown is how long a down link must be steady before it is up
	// again.
	HoldDown time.Duration
}
