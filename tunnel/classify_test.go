package tunnel

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// wgPacket returns a WireGuard-shaped message of type typ and size n, with
// receiver index idx at bytes 4..7 (for transport data).
func wgPacket(typ byte, n int, idx uint32) []byte {
	b := make([]byte, n)
	b[0] = typ
	if n >= 8 {
		binary.LittleEndian.PutUint32(b[4:8], idx)
	}
	for i := 16; i < n; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

// stunPacket returns a STUN message of type typ with attrs as its body.
func stunPacket(typ uint16, attrs []byte) []byte {
	b := make([]byte, 20, 20+len(attrs))
	binary.BigEndian.PutUint16(b[0:2], typ)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(attrs)))
	binary.BigEndian.PutUint32(b[4:8], stunMagicCookie)
	copy(b[8:20], "transaction!")
	return append(b, attrs...)
}

// cookieIndex is a receiver index whose little-endian bytes are the STUN
// magic cookie in network order: 21 12 a4 42.
var cookieIndex = binary.LittleEndian.Uint32([]byte{0x21, 0x12, 0xA4, 0x42})

func TestClassify(t *testing.T) {
	software := []byte{0x80, 0x22, 0x00, 0x04, 'r', 'o', 'a', 'm'} // SOFTWARE attribute
	tests := []struct {
		name string
		pkt  []byte
		want packetKind
	}{
		{"initiation", wgPacket(1, 148, 0), kindWireGuard},
		{"response", wgPacket(2, 92, 0), kindWireGuard},
		{"cookie reply", wgPacket(3, 64, 0), kindWireGuard},
		{"keepalive", wgPacket(4, 32, 7), kindWireGuard},
		{"transport", wgPacket(4, 1452, 7), kindWireGuard},
		{"transport whose index is the magic cookie", wgPacket(4, 48, cookieIndex), kindWireGuard},
		{"keepalive whose index is the magic cookie", wgPacket(4, 32, cookieIndex), kindWireGuard},
		{"initiation, wrong size", wgPacket(1, 149, 0), kindOther},
		{"transport too short", wgPacket(4, 31, 0), kindOther},
		{"type 5", wgPacket(5, 64, 0), kindOther},
		{"type with a nonzero reserved byte", append([]byte{1, 0, 1, 0}, make([]byte, 144)...), kindOther},
		{"binding request", stunPacket(0x0001, nil), kindSTUN},
		{"binding request with attribute", stunPacket(0x0001, software), kindSTUN},
		{"binding success response", stunPacket(0x0101, software), kindSTUN},
		// A STUN type 0x0100 with an empty body has WireGuard's first four
		// bytes (01 00 00 00) but no WireGuard size: it is STUN.
		{"stun that starts like wireguard", stunPacket(0x0100, nil), kindSTUN},
		{"stun, length too long", append(stunPacket(0x0001, software)[:20], software[:4]...), kindOther},
		{"stun, length not a multiple of 4", func() []byte { b := stunPacket(0x0001, []byte{1, 2, 3}); return b }(), kindOther},
		{"stun, top bits set", func() []byte { b := stunPacket(0x0001, nil); b[0] |= 0x40; return b }(), kindOther},
		{"stun, wrong cookie", func() []byte { b := stunPacket(0x0001, nil); b[7]++; return b }(), kindOther},
		{"stun header only 19 bytes", stunPacket(0x0001, nil)[:19], kindOther},
		{"empty", nil, kindOther},
		{"one byte", []byte{4}, kindOther},
		{"dns-ish junk", []byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"), kindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.pkt); got != tt.want {
				t.Errorf("classify = %s, want %s", got, tt.want)
			}
			if got := classifySlow(tt.pkt); got != tt.want {
				t.Errorf("classifySlow = %s, want %s", got, tt.want)
			}
		})
	}
}

// classifySlow is the rule written out plainly, field by field, to check
// classify against.
func classifySlow(b []byte) packetKind {
	if len(b) >= 4 {
		msgType := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		sizes := map[uint32]func(int) bool{
			1: func(n int) bool { return n == 148 },
			2: func(n int) bool { return n == 92 },
			3: func(n int) bool { return n == 64 },
			4: func(n int) bool { return n >= 32 },
		}
		if ok, known := sizes[msgType]; known && ok(len(b)) {
			return kindWireGuard
		}
	}
	if len(b) < 20 {
		return kindOther
	}
	firstTwoBits := b[0] >> 6
	length := int(b[2])<<8 | int(b[3])
	cookie := []byte{0x21, 0x12, 0xA4, 0x42}
	if firstTwoBits == 0 && bytes.Equal(b[4:8], cookie) && length == len(b)-20 && length%4 == 0 {
		return kindSTUN
	}
	return kindOther
}

// FuzzClassify checks that classify never panics, agrees with the plain
// reference, and that whatever it calls STUN passes the STUN header rules
// and is not WireGuard-shaped; a packet rebuilt as a consistent STUN
// message from the input (length fixed, cookie set, top bits cleared) is
// STUN unless it is WireGuard-shaped. Seeds: testdata/fuzz/FuzzClassify.
func FuzzClassify(f *testing.F) {
	f.Add(wgPacket(4, 48, cookieIndex))
	f.Add(stunPacket(0x0001, []byte{0x80, 0x22, 0x00, 0x04, 'r', 'o', 'a', 'm'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		k := classify(b)
		if slow := classifySlow(b); k != slow {
			t.Fatalf("classify = %s, reference = %s for % x", k, slow, b)
		}
		if k == kindSTUN {
			if len(b) < 20 || b[0]&0xC0 != 0 || binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie ||
				int(binary.BigEndian.Uint16(b[2:4])) != len(b)-20 || len(b)%4 != 0 || isWireGuard(b) {
				t.Fatalf("classified STUN but breaks the header rules: % x", b)
			}
		}
		// Round trip: make a consistent STUN message of the input's body.
		body := b
		if len(body) > 20 {
			body = body[20:]
		} else {
			body = nil
		}
		body = body[:len(body)/4*4]
		typ := uint16(0)
		if len(b) >= 2 {
			typ = binary.BigEndian.Uint16(b[0:2]) & 0x3FFF
		}
		s := stunPacket(typ, body)
		if got := classify(s); got != kindSTUN && !isWireGuard(s) {
			t.Fatalf("a consistent STUN message is %s: % x", got, s)
		}
	})
}
