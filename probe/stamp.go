package probe

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// STAMP (RFC 8762) test packets in unauthenticated mode, with the
// Session-Sender Identifier of RFC 8972 in octets 14-15 (MBZ in RFC 8762, so
// zero for a sender that does not use it).
//
// Session-Sender test packet (RFC 8762 section 4.2.1), 44 octets:
//
//	 0.. 3  Sequence Number
//	 4..11  Timestamp
//	12..13  Error Estimate
//	14..15  SSID (RFC 8972; MBZ in RFC 8762)
//	16..43  MBZ
//
// Session-Reflector test packet (RFC 8762 section 4.3.1), 44 octets:
//
//	 0.. 3  Sequence Number
//	 4..11  Timestamp
//	12..13  Error Estimate
//	14..15  SSID (RFC 8972; MBZ in RFC 8762)
//	16..23  Receive Timestamp
//	24..27  Session-Sender Sequence Number
//	28..35  Session-Sender Timestamp
//	36..37  Session-Sender Error Estimate
//	38..39  MBZ
//	40      Ses-Sender TTL
//	41..43  MBZ
//
// MBZ octets are zeroed on transmission and ignored on receipt (RFC 8762).
// Octets after the first 44 (RFC 8972 TLVs, padding) are accepted and
// ignored. The unauthenticated and authenticated layouts cannot be told apart
// on the wire: the mode is agreed per session, and this package speaks only
// the unauthenticated one.

// PacketLen is the length of a STAMP test packet, sender's or reflector's,
// in unauthenticated mode; longer packets carry TLVs or padding after it.
const PacketLen = 44

// SenderPacket is a STAMP Session-Sender test packet.
type SenderPacket struct {
	// Seq is the sender's sequence number, one per packet sent in the session.
	Seq uint32
	// Timestamp is when the packet was sent (T1), in the format ErrorEstimate
	// says (NTP unless its Z bit is set).
	Timestamp Timestamp
	// ErrorEstimate describes the sender's clock.
	ErrorEstimate ErrorEstimate
	// SSID is the RFC 8972 Session-Sender Identifier; 0 when not used.
	SSID uint16
}

// ReflectorPacket is a STAMP Session-Reflector test packet: the reply to a
// SenderPacket.
type ReflectorPacket struct {
	// Seq is the reflector's sequence number: its own counter in stateful
	// mode, a copy of SenderSeq in stateless mode.
	Seq uint32
	// Timestamp is when the reply was sent (T3).
	Timestamp Timestamp
	// ErrorEstimate describes the reflector's clock.
	ErrorEstimate ErrorEstimate
	// SSID is the RFC 8972 Session-Sender Identifier; 0 when not used.
	SSID uint16
	// ReceiveTimestamp is when the sender's packet arrived (T2), in the
	// format ErrorEstimate says.
	ReceiveTimestamp Timestamp
	// SenderSeq, SenderTimestamp and SenderErrorEstimate are copied from the
	// SenderPacket this replies to.
	SenderSeq           uint32
	SenderTimestamp     Timestamp
	SenderErrorEstimate ErrorEstimate
	// SenderTTL is the TTL (IPv4) or Hop Limit (IPv6) the sender's packet
	// arrived with; 255 when the reflector cannot tell.
	SenderTTL uint8
}

// ParseSenderPacket decodes a Session-Sender test packet from the start of b.
// Octets after the first PacketLen are ignored, as are MBZ octets.
func ParseSenderPacket(b []byte) (SenderPacket, error) {
	if len(b) < PacketLen {
		return SenderPacket{}, fmt.Errorf("probe: STAMP sender packet: %d bytes, want at least %d", len(b), PacketLen)
	}
	return SenderPacket{
		Seq:           binary.BigEndian.Uint32(b[0:]),
		Timestamp:     Timestamp(binary.BigEndian.Uint64(b[4:])),
		ErrorEstimate: ErrorEstimate(binary.BigEndian.Uint16(b[12:])),
		SSID:          binary.BigEndian.Uint16(b[14:]),
	}, nil
}

// ParseReflectorPacket decodes a Session-Reflector test packet from the start
// of b. Octets after the first PacketLen are ignored, as are MBZ octets.
func ParseReflectorPacket(b []byte) (ReflectorPacket, error) {
	if len(b) < PacketLen {
		return ReflectorPacket{}, fmt.Errorf("probe: STAMP reflector packet: %d bytes, want at least %d", len(b), PacketLen)
	}
	return ReflectorPacket{
		Seq:                 binary.BigEndian.Uint32(b[0:]),
		Timestamp:           Timestamp(binary.BigEndian.Uint64(b[4:])),
		ErrorEstimate:       ErrorEstimate(binary.BigEndian.Uint16(b[12:])),
		SSID:                binary.BigEndian.Uint16(b[14:]),
		ReceiveTimestamp:    Timestamp(binary.BigEndian.Uint64(b[16:])),
		SenderSeq:           binary.BigEndian.Uint32(b[24:]),
		SenderTimestamp:     Timestamp(binary.BigEndian.Uint64(b[28:])),
		SenderErrorEstimate: ErrorEstimate(binary.BigEndian.Uint16(b[36:])),
		SenderTTL:           b[40],
	}, nil
}

// UnmarshalBinary sets p from b as ParseSenderPacket does.
func (p *SenderPacket) UnmarshalBinary(b []byte) error {
	q, err := ParseSenderPacket(b)
	if err == nil {
		*p = q
	}
	return err
}

// UnmarshalBinary sets p from b as ParseReflectorPacket does.
func (p *ReflectorPacket) UnmarshalBinary(b []byte) error {
	q, err := ParseReflectorPacket(b)
	if err == nil {
		*p = q
	}
	return err
}

// AppendBinary appends the PacketLen octets of p to b. It never fails.
func (p SenderPacket) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, p.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Timestamp))
	b = binary.BigEndian.AppendUint16(b, uint16(p.ErrorEstimate))
	b = binary.BigEndian.AppendUint16(b, p.SSID)
	return append(b, make([]byte, PacketLen-16)...), nil
}

// MarshalBinary returns the PacketLen octets of p. It never fails.
func (p SenderPacket) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, PacketLen))
}

// AppendBinary appends the PacketLen octets of p to b. It never fails.
func (p ReflectorPacket) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, p.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Timestamp))
	b = binary.BigEndian.AppendUint16(b, uint16(p.ErrorEstimate))
	b = binary.BigEndian.AppendUint16(b, p.SSID)
	b = binary.BigEndian.AppendUint64(b, uint64(p.ReceiveTimestamp))
	b = binary.BigEndian.AppendUint32(b, p.SenderSeq)
	b = binary.BigEndian.AppendUint64(b, uint64(p.SenderTimestamp))
	b = binary.BigEndian.AppendUint16(b, uint16(p.SenderErrorEstimate))
	b = append(b, 0, 0, p.SenderTTL, 0, 0, 0)
	return b, nil
}

// MarshalBinary returns the PacketLen octets of p. It never fails.
func (p ReflectorPacket) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, PacketLen))
}

// RTT returns the round-trip time of a reply received at t4: (T4-T1) -
// (T3-T2), the time the probe spent on the path without the time it spent in
// the reflector. T1 and T4 are read from the sender's clock and T2 and T3
// from the reflector's, so the clocks need not agree, only tick at the same
// rate. Each timestamp is decoded in the format its error estimate names.
func (p ReflectorPacket) RTT(t4 time.Time) time.Duration {
	t1 := p.SenderErrorEstimate.Time(p.SenderTimestamp)
	t2 := p.ErrorEstimate.Time(p.ReceiveTimestamp)
	t3 := p.ErrorEstimate.Time(p.Timestamp)
	return RoundTrip(t1, t2, t3, t4)
}

// RoundTrip returns (t4-t1) - (t3-t2): the round trip of a probe sent at t1,
// received by the reflector at t2, answered at t3 and the answer received at
// t4. It can be negative when the clocks' rates or resolutions differ.
func RoundTrip(t1, t2, t3, t4 time.Time) time.Duration {
	return t4.Sub(t1) - t3.Sub(t2)
}

// Timestamp is a STAMP timestamp as sent: 64 bits, NTP (32 bits of seconds
// since 1900 and 32 of fraction) or, when the error estimate's Z bit is set,
// truncated PTPv2 (32 bits of seconds since 1970 and 32 of nanoseconds).
type Timestamp uint64

const (
	// ntpEpochOffset is the number of seconds from 1900-01-01 (the NTP
	// epoch) to 1970-01-01 (the Unix epoch).
	ntpEpochOffset = 2208988800
	// ntpEra is the length of an NTP era: 2^32 seconds.
	ntpEra = 1 << 32
)

// NTPTimestamp returns t in NTP format. The fraction is rounded up, so
// NTPTime returns t to the nanosecond. The era is dropped: NTPTime decodes
// it for 1968-01-20 to 2104-02-26.
func NTPTimestamp(t time.Time) Timestamp {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond())<<32 + 1e9 - 1) / 1e9
	return Timestamp(sec<<32 | frac)
}

// NTPTime decodes ts as an NTP timestamp. The era is chosen as RFC 4330
// section 3 suggests: a seconds value with its top bit set is in era 0
// (1968-01-20 to 2036-02-07), one without in era 1 (to 2104-02-26). The
// fraction is rounded down to a nanosecond.
func (ts Timestamp) NTPTime() time.Time {
	sec := int64(ts >> 32)
	if sec < 1<<31 {
		sec += ntpEra
	}
	nsec := (uint64(ts) & 0xffffffff) * 1e9 >> 32
	return time.Unix(sec-ntpEpochOffset, int64(nsec))
}

// PTPTimestamp returns t in truncated PTPv2 format: seconds since 1970
// (modulo 2^32) and nanoseconds. It ignores the TAI-UTC offset, as STAMP
// implementations that take the time from the system clock do.
func PTPTimestamp(t time.Time) Timestamp {
	return Timestamp(uint64(uint32(t.Unix()))<<32 | uint64(t.Nanosecond()))
}

// PTPTime decodes ts as a truncated PTPv2 timestamp, for 1970 to 2106. A
// nanoseconds field of 1e9 or more (invalid) carries into the seconds.
func (ts Timestamp) PTPTime() time.Time {
	return time.Unix(int64(ts>>32), int64(ts&0xffffffff))
}

// ErrorEstimate is the Error Estimate field (RFC 4656 section 4.1.2, with
// the Z bit of RFC 8762 section 4.2.1): S (the clock is synchronised to
// UTC), Z (timestamps are PTPv2, not NTP), a 6-bit Scale and an 8-bit
// Multiplier; the error is Multiplier x 2^(Scale-32) seconds.
type ErrorEstimate uint16

const (
	errSync  = 1 << 15
	errPTP   = 1 << 14
	maxScale = 63
)

// NewErrorEstimate encodes an error of at least e (rounded up to what the
// field can say; negative counts as zero) with the S bit set when synced and
// the Z bit when ptp. The multiplier is never zero: RFC 4656 reserves zero.
func NewErrorEstimate(synced, ptp bool, e time.Duration) ErrorEstimate {
	var v ErrorEstimate
	if synced {
		v |= errSync
	}
	if ptp {
		v |= errPTP
	}
	sec := max(e.Seconds(), 0)
	for scale := 0; scale <= maxScale; scale++ {
		m := math.Ceil(sec * math.Ldexp(1, 32-scale))
		if m <= 255 {
			return v | ErrorEstimate(scale)<<8 | ErrorEstimate(max(m, 1))
		}
	}
	return v | maxScale<<8 | 255
}

// Synchronized reports the S bit: the clock is synchronised to UTC.
func (e ErrorEstimate) Synchronized() bool { return e&errSync != 0 }

// PTP reports the Z bit: timestamps are truncated PTPv2, not NTP.
func (e ErrorEstimate) PTP() bool { return e&errPTP != 0 }

// Scale returns the 6-bit scale.
func (e ErrorEstimate) Scale() int { return int(e>>8) & maxScale }

// Multiplier returns the 8-bit multiplier; zero means the timestamps must
// not be trusted (RFC 4656).
func (e ErrorEstimate) Multiplier() int { return int(e & 0xff) }

// Duration returns the estimated error, rounded up to a nanosecond and
// capped at the largest time.Duration.
func (e ErrorEstimate) Duration() time.Duration {
	ns := math.Ceil(float64(e.Multiplier()) * math.Ldexp(1e9, e.Scale()-32))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// Time decodes ts in the format e names: PTPTime when the Z bit is set,
// else NTPTime.
func (e ErrorEstimate) Time(ts Timestamp) time.Time {
	if e.PTP() {
		return ts.PTPTime()
	}
	return ts.NTPTime()
}

// Timestamp encodes t in the format e names.
func (e ErrorEstimate) Timestamp(t time.Time) Timestamp {
	if e.PTP() {
		return PTPTimestamp(t)
	}
	return NTPTimestamp(t)
}

// String formats e as "S=1 Z=0 scale=.. mult=.. (error)".
func (e ErrorEstimate) String() string {
	return fmt.Sprintf("S=%d Z=%d scale=%d mult=%d (%v)", b2i(e.Synchronized()), b2i(e.PTP()), e.Scale(), e.Multiplier(), e.Duration())
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
