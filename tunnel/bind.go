package tunnel

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/conn"
)

// Bind is the UDP Bind of a userspace device: wireguard-go's own StdNetBind
// (batched reads and writes and UDP GSO/GRO offloads are kept, the socket
// is not reimplemented) with a side door for STUN. Every received datagram is classified: STUN messages are copied to
// the STUN handler and hidden from WireGuard (their size set to 0, which
// wireguard-go skips); everything else, including packets that are neither,
// goes to WireGuard. SendSTUN sends on the same socket, so a STUN server or
// ICE peer sees the very address and port WireGuard uses.
type Bind struct {
	inner conn.Bind
	log   *slog.Logger
	// inNetns runs a function with the thread in the device's network
	// namespace; nil runs it on the calling thread. wireguard-go reopens
	// its sockets from whatever goroutine changes the port or brings the
	// device up.
	inNetns func(func() error) error

	handler atomic.Pointer[func(pkt []byte, from netip.AddrPort)]
	port    atomic.Uint32 // bound port; 0 while closed
}

var _ conn.Bind = (*Bind)(nil)

// NewBind returns a closed Bind over conn.NewStdNetBind(). log may be nil.
func NewBind(log *slog.Logger) *Bind {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newBind(log.With("component", "tunnel"), nil)
}

// newBind returns a closed Bind; log has its component already.
func newBind(log *slog.Logger, inNetns func(func() error) error) *Bind {
	return &Bind{inner: conn.NewStdNetBind(), log: log, inNetns: inNetns}
}

// SetSTUNHandler sets the function that receives every STUN message that
// arrives on the port, with the sender's address; nil drops them. It may be
// called at any time. h runs on WireGuard's receive path: it must not block.
// pkt is a copy that h may keep.
func (b *Bind) SetSTUNHandler(h func(pkt []byte, from netip.AddrPort)) {
	if h == nil {
		b.handler.Store(nil)
		return
	}
	b.handler.Store(&h)
}

// SendSTUN sends pkt (a STUN message) to the address to from WireGuard's
// UDP socket.
func (b *Bind) SendSTUN(pkt []byte, to netip.AddrPort) error {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	if !to.IsValid() || to.Port() == 0 {
		return fmt.Errorf("tunnel: send stun to %s: not an address and port", to)
	}
	if b.port.Load() == 0 {
		return fmt.Errorf("tunnel: send stun to %s: %w", to, net.ErrClosed)
	}
	if err := b.inner.Send([][]byte{pkt}, &conn.StdNetEndpoint{AddrPort: to}); err != nil {
		return fmt.Errorf("tunnel: send stun to %s: %w", to, err)
	}
	return nil
}

// Port is the UDP port the Bind listens on; 0 while it is closed.
func (b *Bind) Port() uint16 { return uint16(b.port.Load()) }

// Open implements conn.Bind: it opens the sockets (in the device's network
// namespace) and wraps their receive functions with the STUN demux.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	var (
		fns    []conn.ReceiveFunc
		actual uint16
	)
	open := func() error {
		var err error
		fns, actual, err = b.inner.Open(port)
		return err
	}
	var err error
	if b.inNetns != nil {
		err = b.inNetns(open)
	} else {
		err = open()
	}
	if err != nil {
		return nil, 0, err
	}
	wrapped := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		wrapped[i] = b.demux(fn)
	}
	b.port.Store(uint32(actual))
	b.log.Debug("bind: open", "port", actual)
	return wrapped, actual, nil
}

// demux wraps fn: STUN messages go to the handler and get size 0.
func (b *Bind) demux(fn conn.ReceiveFunc) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, err := fn(bufs, sizes, eps)
		for i := 0; i < n; i++ {
			if sizes[i] == 0 {
				continue
			}
			pkt := bufs[i][:sizes[i]]
			if classify(pkt) != kindSTUN {
				continue
			}
			sizes[i] = 0
			b.deliverSTUN(pkt, eps[i])
		}
		return n, err
	}
}

func (b *Bind) deliverSTUN(pkt []byte, ep conn.Endpoint) {
	var from netip.AddrPort
	if se, ok := ep.(*conn.StdNetEndpoint); ok {
		from = se.AddrPort
	} else if ep != nil {
		from, _ = netip.ParseAddrPort(ep.DstToString())
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	h := b.handler.Load()
	if h == nil {
		b.log.Debug("bind: stun message dropped: no handler", "from", from, "size", len(pkt))
		return
	}
	(*h)(append([]byte(nil), pkt...), from)
}

// Close implements conn.Bind.
func (b *Bind) Close() error {
	b.port.Store(0)
	return b.inner.Close()
}

// Send implements conn.Bind.
//
// wireguard-go runs its sticky-source route listener only for an unwrapped
// *conn.StdNetBind, so with this Bind nothing clears a peer's cached source
// address when routes change. That costs nothing today: with UDP GRO on
// (Linux >= 5.0) StdNetBind never records a source in the first place (the
// control message is lost when it splits a coalesced read), so the kernel
// picks the source per packet. TestRootSourceAddressChange guards this.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error { return b.inner.Send(bufs, ep) }

// SetMark implements conn.Bind.
func (b *Bind) SetMark(mark uint32) error { return b.inner.SetMark(mark) }

// ParseEndpoint implements conn.Bind.
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) { return b.inner.ParseEndpoint(s) }

// BatchSize implements conn.Bind.
func (b *Bind) BatchSize() int { return b.inner.BatchSize() }
