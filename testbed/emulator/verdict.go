package emulator

import (
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// queueLimit is how many frames may wait for departure; a frame arriving at a
// full queue is dropped and counted. netem's default of 1000 would drop at the
// 10 000 frames/s we emulate once the delay reaches 100 ms; 10 000 frames hold
// a second of that rate (at most ~15 MB).
const queueLimit = 10000

// fate is what happens to one frame.
type fate int

const (
	fateSend      fate = iota // queue it for departure
	fateLost                  // dropped by Loss
	fateQueueFull             // dropped: queueLimit frames already wait
)

// verdict is decide's answer for one frame.
type verdict struct {
	fate    fate
	corrupt bool      // flip one bit before sending (see corruptFrame)
	depart  time.Time // when to send it; meaningful for fateSend
}

// decide is netem's enqueue decision for a frame of size bytes arriving at
// now, with queued frames waiting and last the latest departure scheduled:
// random loss first, then the queue limit, then corruption, then the
// departure time. Delay is Delay plus uniform jitter in [-Jitter, +Jitter),
// never below zero; without a rate frames may overtake each other when their
// jitter differs, as in netem. With a rate, departures serialise like netem
// rate: the frame starts at max(now+delay, last) and leaves size*8/rate later,
// so frames keep their order.
func decide(imp Impairment, now, last time.Time, size, queued int, rng *rand.Rand) verdict {
	if chance(imp.Loss, rng) {
		return verdict{fate: fateLost}
	}
	if queued >= queueLimit {
		return verdict{fate: fateQueueFull}
	}
	v := verdict{corrupt: chance(imp.Corrupt, rng)}
	d := imp.Delay
	if imp.Jitter > 0 {
		d += time.Duration(rng.Int64N(2*int64(imp.Jitter))) - imp.Jitter
		d = max(d, 0)
	}
	v.depart = now.Add(d)
	if imp.RateKbps > 0 {
		if last.After(v.depart) {
			v.depart = last
		}
		v.depart = v.depart.Add(serialisation(size, imp.RateKbps))
	}
	return v
}

// chance reports true with probability percent/100.
func chance(percent float64, rng *rand.Rand) bool {
	return percent > 0 && rng.Float64()*100 < percent
}

// serialisation is how long size bytes take at rateKbps kbit/s.
func serialisation(size int, rateKbps uint64) time.Duration {
	return time.Duration(uint64(size) * 8 * uint64(time.Millisecond) / rateKbps)
}

// corruptFrame flips one random bit of an Ethernet frame's IP payload, past
// the Ethernet, VLAN and IP headers. The IP header stays intact, so the
// frame reaches its destination and the transport checksum (TCP, UDP, ICMP)
// drops it there; only a checksum-less transport (UDP with checksum 0)
// delivers the flipped bit. Frames that are not IP, or have no payload, are
// left alone and it returns false. (netem flips a bit anywhere, which mostly
// makes the frame vanish at the Ethernet or IP layer instead.)
func corruptFrame(frame []byte, rng *rand.Rand) bool {
	off := ipPayloadOffset(frame)
	if off < 0 || off >= len(frame) {
		return false
	}
	i := off + rng.IntN(len(frame)-off)
	frame[i] ^= 1 << rng.IntN(8)
	return true
}

// ipPayloadOffset is where the IP payload of an Ethernet frame starts, or -1.
func ipPayloadOffset(frame []byte) int {
	off := 12
	for range 3 { // up to two VLAN tags before the EtherType
		if len(frame) < off+2 {
			return -1
		}
		switch binary.BigEndian.Uint16(frame[off:]) {
		case 0x8100, 0x88a8:
			off += 4
			continue
		case 0x0800:
			off += 2
			if len(frame) < off+20 {
				return -1
			}
			ihl := int(frame[off]&0x0f) * 4
			if frame[off]>>4 != 4 || ihl < 20 {
				return -1
			}
			return off + ihl
		case 0x86dd:
			off += 2
			if len(frame) < off+40 {
				return -1
			}
			return off + 40
		}
		return -1
	}
	return -1
}
