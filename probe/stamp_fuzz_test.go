package probe

import (
	"bytes"
	"testing"
)

// mbz returns b's first PacketLen octets with the octets at the given
// [from, to) ranges zeroed: what a parser that ignores MBZ gives back.
func mbz(b []byte, ranges ...[2]int) []byte {
	b = bytes.Clone(b[:PacketLen])
	for _, r := range ranges {
		clear(b[r[0]:r[1]])
	}
	return b
}

// FuzzSenderPacket: ParseSenderPacket never panics, accepts exactly the
// inputs of at least PacketLen octets, and what it accepts marshals back to
// the same first PacketLen octets with the MBZ octets zeroed.
func FuzzSenderPacket(f *testing.F) {
	f.Add(senderVec)
	f.Add(senderVec[:PacketLen-1])
	f.Add(cat(senderVec, []byte{1, 0, 0, 4, 1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseSenderPacket(b)
		if (err != nil) != (len(b) < PacketLen) {
			t.Fatalf("%d bytes: err %v", len(b), err)
		}
		if err != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if want := mbz(b, [2]int{16, 44}); !bytes.Equal(out, want) {
			t.Fatalf("round trip of %x gave %x, want %x", b, out, want)
		}
		if q, err := ParseSenderPacket(out); err != nil || q != p {
			t.Fatalf("reparse = %+v, %v; want %+v", q, err, p)
		}
	})
}

// FuzzReflectorPacket is FuzzSenderPacket for ParseReflectorPacket.
func FuzzReflectorPacket(f *testing.F) {
	f.Add(reflectorVec)
	f.Add(reflectorVec[:10])
	f.Add(cat(reflectorVec, make([]byte, 20)))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseReflectorPacket(b)
		if (err != nil) != (len(b) < PacketLen) {
			t.Fatalf("%d bytes: err %v", len(b), err)
		}
		if err != nil {
			return
		}
		out, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := mbz(b, [2]int{38, 40}, [2]int{41, 44}); !bytes.Equal(out, want) {
			t.Fatalf("round trip of %x gave %x, want %x", b, out, want)
		}
		if q, err := ParseReflectorPacket(out); err != nil || q != p {
			t.Fatalf("reparse = %+v, %v; want %+v", q, err, p)
		}
	})
}
