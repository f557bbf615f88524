package probe

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Hand-built packets, field by field as RFC 8762 sections 4.2.1 and 4.3.1
// draw them.
var (
	// 2023-09-05T13:59:31.5Z in NTP format.
	ntpVec = []byte{0xe8, 0xa1, 0xb2, 0xc3, 0x80, 0x00, 0x00, 0x00}
	ntpT   = time.Date(2023, 9, 5, 13, 59, 31, 5e8, time.UTC)

	senderVec = cat(
		[]byte{0x01, 0x02, 0x03, 0x04}, // sequence number
		ntpVec,                         // timestamp
		[]byte{0x8f, 0x84},             // error estimate: S=1 Z=0 scale 15 mult 132
		[]byte{0x0a, 0x0b},             // SSID (RFC 8972)
		make([]byte, 28),               // MBZ
	)
	senderPkt = SenderPacket{Seq: 0x01020304, Timestamp: 0xe8a1b2c380000000, ErrorEstimate: 0x8f84, SSID: 0x0a0b}

	reflectorVec = cat(
		[]byte{0xff, 0xff, 0xff, 0xfe},                         // sequence number
		[]byte{0xe8, 0xa1, 0xb2, 0xc3, 0x80, 0x01, 0x00, 0x00}, // timestamp (T3)
		[]byte{0x40, 0x01},                                     // error estimate: S=0 Z=1 scale 0 mult 1
		[]byte{0x00, 0x07},                                     // SSID
		[]byte{0xe8, 0xa1, 0xb2, 0xc3, 0x80, 0x00, 0x10, 0x00}, // receive timestamp (T2)
		[]byte{0x01, 0x02, 0x03, 0x04},                         // session-sender sequence number
		ntpVec,                                                 // session-sender timestamp (T1)
		[]byte{0x8f, 0x84},                                     // session-sender error estimate
		[]byte{0x00, 0x00},                                     // MBZ
		[]byte{0x3f},                                           // ses-sender TTL 63
		[]byte{0x00, 0x00, 0x00},                               // MBZ
	)
	reflectorPkt = ReflectorPacket{
		Seq: 0xfffffffe, Timestamp: 0xe8a1b2c380010000, ErrorEstimate: 0x4001, SSID: 7,
		ReceiveTimestamp: 0xe8a1b2c380001000, SenderSeq: 0x01020304,
		SenderTimestamp: 0xe8a1b2c380000000, SenderErrorEstimate: 0x8f84, SenderTTL: 63,
	}
)

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// with returns a copy of b with b[i] set to v.
func with(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

func TestParseSenderPacket(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    SenderPacket
		wantErr string
	}{
		{name: "rfc layout", in: senderVec, want: senderPkt},
		{name: "TLVs after", in: cat(senderVec, []byte{0x01, 0x00, 0x00, 0x04, 1, 2, 3, 4}), want: senderPkt},
		{name: "MBZ not zero is ignored", in: with(with(senderVec, 16, 0xff), 43, 1), want: senderPkt},
		{name: "one short", in: senderVec[:43], wantErr: "43 bytes, want at least 44"},
		{name: "empty", in: nil, wantErr: "0 bytes, want at least 44"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSenderPacket(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "probe: STAMP sender packet: ") {
					t.Fatalf("err %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSenderPacket = %+v, %v; want %+v", got, err, tt.want)
			}
			var p SenderPacket
			if err := p.UnmarshalBinary(tt.in); err != nil || p != tt.want {
				t.Errorf("UnmarshalBinary = %+v, %v", p, err)
			}
		})
	}
}

func TestParseReflectorPacket(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    ReflectorPacket
		wantErr string
	}{
		{name: "rfc layout", in: reflectorVec, want: reflectorPkt},
		{name: "padding after", in: cat(reflectorVec, make([]byte, 20)), want: reflectorPkt},
		{name: "MBZ not zero is ignored", in: with(with(with(reflectorVec, 38, 1), 39, 2), 41, 3), want: reflectorPkt},
		{name: "sender packet length is fine", in: senderVec, want: ReflectorPacket{
			Seq: 0x01020304, Timestamp: 0xe8a1b2c380000000, ErrorEstimate: 0x8f84, SSID: 0x0a0b}},
		{name: "short", in: reflectorVec[:40], wantErr: "40 bytes, want at least 44"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReflectorPacket(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "probe: STAMP reflector packet: ") {
					t.Fatalf("err %v, want one saying %q", err, tt.wantErr)
				}
				var p ReflectorPacket
				if p.UnmarshalBinary(tt.in) == nil {
					t.Errorf("UnmarshalBinary accepted %d bytes", len(tt.in))
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseReflectorPacket = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	b, err := senderPkt.MarshalBinary()
	if err != nil || !bytes.Equal(b, senderVec) {
		t.Errorf("sender MarshalBinary = %x, %v; want %x", b, err, senderVec)
	}
	b, err = reflectorPkt.MarshalBinary()
	if err != nil || !bytes.Equal(b, reflectorVec) {
		t.Errorf("reflector MarshalBinary = %x, %v; want %x", b, err, reflectorVec)
	}
	b, _ = reflectorPkt.AppendBinary([]byte("hdr"))
	if !bytes.Equal(b, cat([]byte("hdr"), reflectorVec)) {
		t.Errorf("AppendBinary = %x", b)
	}
	b, _ = senderPkt.AppendBinary([]byte("hdr"))
	if !bytes.Equal(b, cat([]byte("hdr"), senderVec)) {
		t.Errorf("AppendBinary = %x", b)
	}
}

func TestNTPTimestamp(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		ts   Timestamp
	}{
		{name: "vector", t: ntpT, ts: 0xe8a1b2c380000000},
		{name: "unix epoch", t: time.Unix(0, 0), ts: 0x83aa7e80 << 32},
		{name: "first of era 0 decoded", t: time.Date(1968, 1, 20, 3, 14, 8, 0, time.UTC), ts: 0x80000000 << 32},
		{name: "last of era 0", t: time.Date(2036, 2, 7, 6, 28, 15, 999999999, time.UTC), ts: 0xffffffff_fffffffc},
		{name: "first of era 1", t: time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC), ts: 0},
		{name: "last of era 1 decoded", t: time.Date(2104, 2, 26, 9, 42, 23, 0, time.UTC), ts: 0x7fffffff << 32},
		{name: "1 ns rounds up to 5/2^32 s", t: time.Unix(0, 1), ts: 0x83aa7e80<<32 | 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NTPTimestamp(tt.t); got != tt.ts {
				t.Errorf("NTPTimestamp(%v) = %#x, want %#x", tt.t, uint64(got), uint64(tt.ts))
			}
			if got := tt.ts.NTPTime(); !got.Equal(tt.t) {
				t.Errorf("NTPTime(%#x) = %v, want %v", uint64(tt.ts), got, tt.t)
			}
		})
	}
}

func TestTimestampRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	hi := time.Date(2104, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for range 10000 {
		tm := time.Unix(0, lo+r.Int64N(hi-lo))
		if got := NTPTimestamp(tm).NTPTime(); !got.Equal(tm) {
			t.Fatalf("NTP round trip of %v gave %v", tm, got)
		}
		if tm.Unix() < 1<<32 {
			if got := PTPTimestamp(tm).PTPTime(); !got.Equal(tm) {
				t.Fatalf("PTP round trip of %v gave %v", tm, got)
			}
		}
	}
	if got := PTPTimestamp(ntpT); got != Timestamp(uint64(ntpT.Unix())<<32|5e8) {
		t.Errorf("PTPTimestamp = %#x", uint64(got))
	}
}

func TestErrorEstimate(t *testing.T) {
	tests := []struct {
		name         string
		synced, ptp  bool
		in           time.Duration
		want         ErrorEstimate
		wantDuration time.Duration
	}{
		{name: "1 ms synced", synced: true, in: time.Millisecond, want: 0x8f84, wantDuration: 1007081},
		{name: "zero is the smallest nonzero multiplier", in: 0, want: 0x0001, wantDuration: 1},
		{name: "negative counts as zero", in: -time.Second, want: 0x0001, wantDuration: 1},
		{name: "ptp", ptp: true, in: 0, want: 0x4001, wantDuration: 1},
		{name: "1 s", in: time.Second, want: 0x1980, wantDuration: time.Second},
		{name: "too big to say", synced: true, ptp: true, in: math.MaxInt64, want: 0xfa8a, wantDuration: math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewErrorEstimate(tt.synced, tt.ptp, tt.in)
			if got != tt.want {
				t.Errorf("NewErrorEstimate = %#04x (%v), want %#04x (%v)", uint16(got), got, uint16(tt.want), tt.want)
			}
			if got.Synchronized() != tt.synced || got.PTP() != tt.ptp {
				t.Errorf("S, Z = %v, %v", got.Synchronized(), got.PTP())
			}
			if d := tt.want.Duration(); d != tt.wantDuration {
				t.Errorf("Duration = %v, want %v", d, tt.wantDuration)
			}
		})
	}
	// Every error is encoded at least as big and less than 1/128 bigger
	// (the multiplier is at least 128 once the scale is above 0).
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		d := time.Duration(r.Int64N(int64(time.Hour)))
		e := NewErrorEstimate(false, false, d)
		if got := e.Duration(); got < d || (e.Scale() > 0 && float64(got) > float64(d)*(1+1.0/128)+1) {
			t.Fatalf("NewErrorEstimate(%v) = %v", d, e)
		}
	}
	if d := ErrorEstimate(0xffff).Duration(); d != math.MaxInt64 {
		t.Errorf("largest estimate = %v, want capped", d)
	}
	if e := ErrorEstimate(0x8f84); e.Scale() != 15 || e.Multiplier() != 132 || e.String() != "S=1 Z=0 scale=15 mult=132 (1.007081ms)" {
		t.Errorf("fields of 0x8f84: %v", e)
	}
}

func TestRTT(t *testing.T) {
	ms := time.Millisecond
	t1 := ntpT
	// The reflector's clock is an hour behind ours; it holds the probe 2 ms.
	off := -time.Hour
	t2 := t1.Add(10*ms + off)
	t3 := t2.Add(2 * ms)
	t4 := t1.Add(30 * ms)
	if got := RoundTrip(t1, t2, t3, t4); got != 28*ms {
		t.Errorf("RoundTrip = %v, want 28ms", got)
	}
	ntp := NewErrorEstimate(true, false, ms)
	ptp := NewErrorEstimate(false, true, ms)
	tests := []struct {
		name       string
		sender, rf ErrorEstimate
	}{
		{name: "ntp both", sender: ntp, rf: ntp},
		{name: "ptp reflector", sender: ntp, rf: ptp},
		{name: "ptp sender", sender: ptp, rf: ntp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ReflectorPacket{
				SenderTimestamp: tt.sender.Timestamp(t1), SenderErrorEstimate: tt.sender,
				ReceiveTimestamp: tt.rf.Timestamp(t2), Timestamp: tt.rf.Timestamp(t3), ErrorEstimate: tt.rf,
			}
			if got := p.RTT(t4); got != 28*ms {
				t.Errorf("RTT = %v, want 28ms", got)
			}
		})
	}
	// The hand-built reply read as NTP: T1 .5 s, T2 .5 s + 2^-20 s (953.67 ns),
	// T3 .5 s + 2^-16 s (15258.79 ns), fractions rounded down to a ns.
	p := reflectorPkt
	p.ErrorEstimate = ntp
	if got, want := p.RTT(ntpT.Add(time.Millisecond)), time.Millisecond-(15258-953)*time.Nanosecond; got != want {
		t.Errorf("RTT of the vector = %v, want %v", got, want)
	}
}
