package tunnel

import (
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"
)

// stunAnswer answers a plain STUN Binding request (RFC 8489: no USERNAME,
// so not an ICE connectivity check) with a Binding success response whose
// XOR-MAPPED-ADDRESS is from: the address and port the request came from,
// as the sender's NAT mapped it. Anything else (responses, ICE checks,
// indications, malformed messages, trailing bytes after the length the
// header gives) is not answered: ok is false.
func stunAnswer(pkt []byte, from netip.AddrPort) (resp []byte, ok bool) {
	if !from.IsValid() || !isSTUN(pkt) {
		return nil, false
	}
	m := &stun.Message{Raw: append([]byte(nil), pkt...)}
	if err := m.Decode(); err != nil || m.Type != stun.BindingRequest || m.Contains(stun.AttrUsername) {
		return nil, false
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	out, err := stun.Build(
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		stun.Fingerprint,
	)
	if err != nil {
		return nil, false
	}
	return out.Raw, true
}

// stunQueue is how many STUN messages wait for a reader of a STUNConn
// before more are dropped.
const stunQueue = 256

type stunDatagram struct {
	b    []byte
	from netip.AddrPort
}

// STUNConn is a net.PacketConn over a Bind's STUN side door, for an ICE
// UDP mux: ReadFrom returns the STUN messages that arrive on WireGuard's
// port, WriteTo sends on that port. With serve set, plain Binding requests
// (a node asking for its mapped address) are answered at once and not
// queued: that is a hub's STUN server. Creating it takes the Bind's STUN
// handler; Close gives it back (nil).
type STUNConn struct {
	bind  *Bind
	serve bool

	in      chan stunDatagram
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64 // queued messages dropped because the reader lagged
	served  atomic.Uint64 // Binding requests answered

	mu       sync.Mutex
	deadline time.Time // read deadline; zero: none
	wake     chan struct{}
}

var _ net.PacketConn = (*STUNConn)(nil)

// NewSTUNConn takes b's STUN handler and returns the conn.
func NewSTUNConn(b *Bind, serve bool) *STUNConn {
	c := &STUNConn{
		bind: b, serve: serve,
		in:   make(chan stunDatagram, stunQueue),
		done: make(chan struct{}),
		wake: make(chan struct{}),
	}
	b.SetSTUNHandler(c.handle)
	return c
}

// handle runs on WireGuard's receive path: it never blocks.
func (c *STUNConn) handle(pkt []byte, from netip.AddrPort) {
	if c.serve {
		if resp, ok := stunAnswer(pkt, from); ok {
			if err := c.bind.SendSTUN(resp, from); err == nil {
				c.served.Add(1)
			} else {
				c.bind.log.Debug("stun: answer not sent", "to", from, "err", err)
			}
			return
		}
	}
	select {
	case c.in <- stunDatagram{pkt, from}:
	default:
		c.dropped.Add(1)
	}
}

// Served is the number of Binding requests answered; Dropped the number of
// messages dropped because nothing read them in time.
func (c *STUNConn) Served() uint64  { return c.served.Load() }
func (c *STUNConn) Dropped() uint64 { return c.dropped.Load() }

// ReadFrom implements net.PacketConn. After Close it returns io.EOF (what
// pion's UDP mux expects of a closed conn).
func (c *STUNConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, wake := c.deadline, c.wake
		c.mu.Unlock()
		var timeout <-chan time.Time
		var t *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			timeout = t.C
		}
		n, from, err, again := c.wait(p, timeout, wake)
		if t != nil {
			t.Stop()
		}
		if !again {
			return n, from, err
		}
	}
}

// wait is one wait of ReadFrom; again is true when the deadline changed.
func (c *STUNConn) wait(p []byte, timeout <-chan time.Time, wake <-chan struct{}) (n int, from net.Addr, err error, again bool) {
	select {
	case pkt := <-c.in:
		return copy(p, pkt.b), net.UDPAddrFromAddrPort(pkt.from), nil, false
	case <-c.done:
		return 0, nil, io.EOF, false
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded, false
	case <-wake:
		return 0, nil, nil, true
	}
}

// WriteTo implements net.PacketConn: it sends p from WireGuard's port.
func (c *STUNConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.InvalidAddrError("not a UDP address")}
	}
	if err := c.bind.SendSTUN(p, ua.AddrPort()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close implements net.PacketConn: ReadFrom returns io.EOF, and the Bind's
// STUN messages are dropped again.
func (c *STUNConn) Close() error {
	c.once.Do(func() {
		c.bind.SetSTUNHandler(nil)
		close(c.done)
	})
	return nil
}

// LocalAddr implements net.PacketConn: the unspecified address on the
// Bind's port (the socket is bound to every address).
func (c *STUNConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4zero, Port: int(c.bind.Port())}
}

// SetDeadline implements net.PacketConn; only reads have a deadline.
func (c *STUNConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (c *STUNConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline implements net.PacketConn; writes never block.
func (c *STUNConn) SetWriteDeadline(time.Time) error { return nil }
