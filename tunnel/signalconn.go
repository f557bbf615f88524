package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/roamnet/roam/api/roampb"
)

// signalDropInfoEvery is how often at most a SignalConn logs, at Info, that
// it keeps dropping datagrams for one reason (each drop is logged at Debug).
const signalDropInfoEvery = time.Minute

// SignalConfig configures a SignalConn.
type SignalConfig struct {
	// Listen is the address and port to receive on: the node's overlay
	// address and SignalPort. Port 0 takes a free port (tests only: a hub
	// forwards to the port it listens on itself).
	Listen netip.AddrPort
	// Sealer seals what Send sends and opens what arrives. Required.
	Sealer *Sealer
	// Relay makes the SignalConn a hub's: datagrams for other nodes are
	// relayed, and Send sends straight to the recipient. Nil on a node.
	Relay *Relay
	// Hubs returns the overlay addresses and ports of the node's hubs, which
	// Send sends through. Required without a Relay. Called on every Send;
	// it must not block.
	Hubs func() []netip.AddrPort
	// Handler receives every Signal that opened, with its authenticated
	// sender. Required. It runs on the receive loop: it must not block, and
	// m is its to keep.
	Handler func(from wgtypes.Key, m *roampb.Signal)
	// Log receives drops (Debug, and Info at most once a minute per reason)
	// and send failures (Debug). Nil discards.
	Log *slog.Logger
}

func (c *SignalConfig) validate() error {
	if !c.Listen.Addr().IsValid() {
		return fmt.Errorf("tunnel: signal: config: Listen %q is not an address and port", c.Listen)
	}
	c.Listen = netip.AddrPortFrom(c.Listen.Addr().Unmap(), c.Listen.Port())
	if c.Sealer == nil {
		return errors.New("tunnel: signal: config: Sealer is nil")
	}
	if c.Relay == nil && c.Hubs == nil {
		return errors.New("tunnel: signal: config: Hubs is nil and there is no Relay: Send would have nowhere to send")
	}
	if c.Handler == nil {
		return errors.New("tunnel: signal: config: Handler is nil")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// SignalConn is a node's signalling endpoint: a UDP socket on its overlay
// address that sends sealed Signals through the node's hubs, opens the ones
// that arrive and hands them to the Handler, and on a hub relays those for
// other nodes.
type SignalConn struct {
	cfg     SignalConfig
	log     *slog.Logger
	ready   chan struct{} // closed once Run listens
	started atomic.Bool
	conn    atomic.Pointer[net.UDPConn] // nil unless Run listens

	stats map[string]*atomic.Uint64 // fixed keys, see Stats

	// dropLogs throttles the Info lines about drops, by reason. Owned by
	// Run's receive loop.
	dropLogs map[string]*signalDropLog
}

type signalDropLog struct {
	last time.Time // of the last Info line
	n    uint64    // drops since
}

// NewSignalConn validates cfg and returns a SignalConn that Run starts.
func NewSignalConn(cfg SignalConfig) (*SignalConn, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &SignalConn{
		cfg:      cfg,
		log:      cfg.Log.With("component", "tunnel"),
		ready:    make(chan struct{}),
		stats:    map[string]*atomic.Uint64{},
		dropLogs: map[string]*signalDropLog{},
	}
	for _, name := range []string{"received", "sent", "relayed", "send_errors", "dropped_other"} {
		c.stats[name] = new(atomic.Uint64)
	}
	for _, d := range signalDrops {
		c.stats["dropped_"+d.name] = new(atomic.Uint64)
	}
	return c, nil
}

// Ready is closed once Run listens; Addr is valid from then on.
func (c *SignalConn) Ready() <-chan struct{} { return c.ready }

// Addr is the address and port Run listens on; invalid while it does not.
func (c *SignalConn) Addr() netip.AddrPort {
	pc := c.conn.Load()
	if pc == nil {
		return netip.AddrPort{}
	}
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Run listens on cfg.Listen (in the calling thread's network namespace) and
// receives until ctx is done: relays (on a hub), opens, and hands Signals to
// the Handler, counting and logging what it drops. It returns nil when ctx
// is done, after the goroutine it started has exited; an error if it cannot
// listen or the socket fails. It runs once.
func (c *SignalConn) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("tunnel: signal: Run called twice")
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(c.cfg.Listen))
	if err != nil {
		return fmt.Errorf("tunnel: signal: listen on %s: %w", c.cfg.Listen, err)
	}
	c.conn.Store(pc)
	close(c.ready)
	c.log.Info("signalling listens", "addr", c.Addr(), "relay", c.cfg.Relay != nil)

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		c.conn.Store(nil)
		pc.Close()
	})
	defer wg.Wait()
	defer close(done)

	buf := make([]byte, MaxSignalSize+1) // one more: a longer datagram reads as too large
	for {
		n, src, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tunnel: signal: receive on %s: %w", c.cfg.Listen, err)
		}
		c.receive(pc, buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
	}
}

// receive handles one datagram from src.
func (c *SignalConn) receive(pc *net.UDPConn, pkt []byte, src netip.AddrPort) {
	if len(pkt) > MaxSignalSize {
		c.drop(fmt.Errorf("tunnel: signal: more than %d bytes: %w", MaxSignalSize, ErrSignalTooLarge), src)
		return
	}
	if c.cfg.Relay != nil {
		d, err := c.cfg.Relay.Route(pkt, src.Addr())
		switch d.Action {
		case RelayDrop:
			c.drop(err, src)
			return
		case RelayForward:
			dst := netip.AddrPortFrom(d.To, c.port(pc))
			if _, err := pc.WriteToUDPAddrPort(d.Packet, dst); err != nil {
				c.stats["send_errors"].Add(1)
				c.log.Debug("signal relay failed", "from", d.From, "to", d.Recipient, "dst", dst, "err", err)
				return
			}
			c.stats["relayed"].Add(1)
			c.log.Debug("signal relayed", "from", d.From, "to", d.Recipient, "src", src, "dst", dst)
			return
		}
	}
	from, m, err := c.cfg.Sealer.Open(pkt)
	if err != nil {
		c.drop(err, src)
		return
	}
	c.stats["received"].Add(1)
	c.cfg.Handler(from, m)
}

// drop counts and logs a datagram from src dropped because of err: at
// Debug each time, at Info for the first drop of a reason and then at most
// once every signalDropInfoEvery, with the count since the last Info line.
func (c *SignalConn) drop(err error, src netip.AddrPort) {
	reason := signalDropName(err)
	c.stats["dropped_"+reason].Add(1)
	c.log.Debug("signal dropped", "src", src, "reason", reason, "err", err)
	l := c.dropLogs[reason]
	if l == nil {
		l = new(signalDropLog)
		c.dropLogs[reason] = l
	}
	l.n++
	if now := time.Now(); now.Sub(l.last) >= signalDropInfoEvery {
		c.log.Info("signals dropped", "reason", reason, "count", l.n, "last_src", src, "last_err", err)
		l.last, l.n = now, 0
	}
}

// port is the port this SignalConn listens on, which is every node's.
func (c *SignalConn) port(pc *net.UDPConn) uint16 {
	return pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

// Send seals m for the node whose key is to (setting m.Seq and m.Sent, see
// Sealer.Seal) and sends it: on a node, the same datagram to every hub (the
// recipient drops the copies after the first); on a hub, straight to the
// recipient's overlay address. It fails if no hub took the datagram.
func (c *SignalConn) Send(to wgtypes.Key, m *roampb.Signal) error {
	pc := c.conn.Load()
	if pc == nil {
		return fmt.Errorf("tunnel: signal: send to %s: %w", to, net.ErrClosed)
	}
	if c.cfg.Relay != nil {
		addr, ok := c.cfg.Relay.Lookup(to)
		if !ok {
			return fmt.Errorf("tunnel: signal: send to %s: no overlay address: %w", to, ErrSignalUnknownRecipient)
		}
		return c.SendTo(netip.AddrPortFrom(addr, c.port(pc)), to, m)
	}
	hubs := c.cfg.Hubs()
	if len(hubs) == 0 {
		return fmt.Errorf("tunnel: signal: send to %s: no hubs", to)
	}
	pkt, err := c.cfg.Sealer.Seal(to, m)
	if err != nil {
		return err
	}
	var errs []error
	for _, hub := range hubs {
		if err := c.write(pc, pkt, hub); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(hubs) {
		return fmt.Errorf("tunnel: signal: send to %s: no hub took it: %w", to, errors.Join(errs...))
	}
	for _, err := range errs {
		c.log.Debug("signal not sent through one hub", "to", to, "err", err)
	}
	return nil
}

// SendTo seals m for the node whose key is to and sends it to dst only: a
// Ping to one hub, or a hub's Directory to one node.
func (c *SignalConn) SendTo(dst netip.AddrPort, to wgtypes.Key, m *roampb.Signal) error {
	pc := c.conn.Load()
	if pc == nil {
		return fmt.Errorf("tunnel: signal: send to %s at %s: %w", to, dst, net.ErrClosed)
	}
	pkt, err := c.cfg.Sealer.Seal(to, m)
	if err != nil {
		return err
	}
	if err := c.write(pc, pkt, dst); err != nil {
		return fmt.Errorf("tunnel: signal: send to %s: %w", to, err)
	}
	return nil
}

func (c *SignalConn) write(pc *net.UDPConn, pkt []byte, dst netip.AddrPort) error {
	if _, err := pc.WriteToUDPAddrPort(pkt, dst); err != nil {
		c.stats["send_errors"].Add(1)
		return fmt.Errorf("to %s: %w", dst, err)
	}
	c.stats["sent"].Add(1)
	return nil
}

// Stats returns the SignalConn's counters: "received" (Signals handed to
// the Handler), "sent" (datagrams sent), "relayed", "send_errors", and
// "dropped_<reason>" for each drop reason (too_large, malformed,
// not_for_us, unknown_sender, forged, stale, replay, hops,
// unknown_recipient, spoofed, other). Every key is always present.
func (c *SignalConn) Stats() map[string]uint64 {
	out := make(map[string]uint64, len(c.stats))
	for k, v := range c.stats {
		out[k] = v.Load()
	}
	return out
}
