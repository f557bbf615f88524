// Package emulator impairs the egress of one interface inside a lab node's
// network namespace: delay, jitter, loss, rate and corruption, changeable
// while traffic flows.
//
// Where the kernel has sch_netem the impairment is a `tc netem` root qdisc.
// Otherwise (this testbed's kernel) a userspace emulator process runs inside
// the node's namespace: a clsact egress filter redirects every frame of the
// interface (u32 match-all, mirred) to a TAP device, the process reads the
// frames, schedules them like netem and transmits them through an AF_PACKET
// socket with PACKET_QDISC_BYPASS, which skips the egress hook.
//
// The userspace emulator follows netem where it can. Loss is independent
// per frame and comes first; a frame arriving when 10 000 frames wait (ten
// times netem's default limit: a second at 10 000 frames/s) is dropped and counted as a queue drop. Delay is Delay plus
// jitter uniform in [-Jitter, +Jitter) (netem without a distribution table),
// never negative; without a rate, frames with different jitter may overtake
// each other, as in netem. A rate serialises frames like netem's: a frame
// starts at max(arrival+delay, previous departure) and takes len*8/rate, so
// frames keep their order. Corruption flips one random bit of the IP
// payload (past the Ethernet and IP headers), so the frame is delivered and
// dropped by the TCP/UDP/ICMP checksum at the receiver (netem flips a bit
// anywhere in the frame); non-IP frames are never corrupted. A new impairment
// applies to frames arriving after it; queued frames keep their schedule.
// Departures are on time to ~0.1 ms at low rates and ~0.25 ms at 10 000
// frames/s on the test VM, never early.
//
// A capture on the emulated interface itself shows none of its outgoing
// frames (they are redirected before the capture point and sent past it);
// capture on the peer, or on the TAP to see them before impairment.
//
// It owns, per emulated interface: the root netem qdisc or the clsact qdisc
// (and its filters), the TAP device named "emu<ifindex>", the emulator process,
// and the files emulator-<iface>.* in the node's state directory.
//
// It must not touch anything else: no address or route anywhere, no
// interface other than the emulated one and its TAP, nothing in the root
// network namespace. A zero Impairment leaves no trace: no process, no TAP,
// no qdisc, no filter, so an unimpaired link costs nothing.
package emulator
