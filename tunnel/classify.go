package tunnel

import "encoding/binary"

// packetKind is what a datagram on WireGuard's port is.
type packetKind uint8

const (
	kindOther     packetKind = iota // neither: left to WireGuard, which drops it
	kindWireGuard                   // a WireGuard message
	kindSTUN                        // a STUN message (RFC 5389 header)
)

func (k packetKind) String() string {
	switch k {
	case kindWireGuard:
		return "wireguard"
	case kindSTUN:
		return "stun"
	default:
		return "other"
	}
}

// WireGuard message types and sizes (the whitepaper, section 5.4).
const (
	wgInitiation     = 1
	wgResponse       = 2
	wgCookieReply    = 3
	wgTransport      = 4
	wgInitiationSize = 148
	wgResponseSize   = 92
	wgCookieSize     = 64
	wgTransportMin   = 32 // header 16 + empty payload + tag 16 (a keepalive)
)

// STUN header (RFC 5389 section 6).
const (
	stunHeaderSize  = 20
	stunMagicCookie = 0x2112A442
)

// classify tells WireGuard from STUN. WireGuard is tested first: a
// transport message's receiver index (bytes 4..7) can equal the STUN magic
// cookie, and such a packet is WireGuard's. Only a packet that passes every
// STUN header rule is STUN; anything else (short, malformed) is kindOther
// and goes to WireGuard, which drops what it cannot authenticate.
func classify(b []byte) packetKind {
	if isWireGuard(b) {
		return kindWireGuard
	}
	if isSTUN(b) {
		return kindSTUN
	}
	return kindOther
}

// isWireGuard reports whether b has a WireGuard message header: type 1..4
// as a little-endian uint32 (the type byte then three zero bytes) and the
// size of that type.
func isWireGuard(b []byte) bool {
	if len(b) < 4 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return false
	}
	switch b[0] {
	case wgInitiation:
		return len(b) == wgInitiationSize
	case wgResponse:
		return len(b) == wgResponseSize
	case wgCookieReply:
		return len(b) == wgCookieSize
	case wgTransport:
		return len(b) >= wgTransportMin
	}
	return false
}

// isSTUN reports whether b has a valid STUN header: the two top bits zero,
// the magic cookie at offset 4, and a message length (a multiple of 4) that
// is exactly the rest of the datagram.
func isSTUN(b []byte) bool {
	if len(b) < stunHeaderSize || b[0]&0xC0 != 0 {
		return false
	}
	if binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	return n%4 == 0 && n == len(b)-stunHeaderSize
}
