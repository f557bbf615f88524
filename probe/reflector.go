package probe

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
)

// STAMPPort is the UDP port IANA assigned to STAMP reflectors (RFC 8762).
const STAMPPort = 862

// ReflectorConfig says where a Reflector answers.
type ReflectorConfig struct {
	// Addr is the address and UDP port to answer on: a node's overlay
	// address and STAMPPort in roamd. Port 0 lets the kernel choose one
	// (tests); LocalAddr says which. Required.
	Addr netip.AddrPort
}

func (c ReflectorConfig) validate() error {
	if !c.Addr.Addr().IsValid() {
		return fmt.Errorf("probe: reflector Addr %q is not an address and port", c.Addr)
	}
	return nil
}

// ReflectorStats counts what a Reflector received and did with it.
type ReflectorStats struct {
	// Received counts datagrams read.
	Received uint64
	// Reflected counts replies sent.
	Reflected uint64
	// Malformed counts datagrams dropped for being too short to be a STAMP
	// test packet.
	Malformed uint64
	// Foreign counts datagrams dropped because their source cannot be a
	// Session-Sender (port 0, an unspecified or multicast address): a reply
	// would go nowhere or to many.
	Foreign uint64
	// SendErrors counts replies the socket refused to send.
	SendErrors uint64
}

// Reflector is a STAMP Session-Reflector (RFC 8762) in unauthenticated,
// stateful mode: it answers each Session-Sender test packet with a
// Session-Reflector test packet carrying its own sequence number (one counter
// per session: sender address, port and SSID, which is what lets the sender
// tell loss on the way out from loss on the way back), its receive and send
// timestamps (NTP format) and copies of the sender's sequence number,
// timestamp, error estimate and SSID. Replies are PacketLen octets: TLVs
// after the base packet are ignored. The Ses-Sender TTL is always 255:
// reading the received TTL (IP_RECVTTL) needs per-platform socket code.
type Reflector struct {
	cfg   ReflectorConfig
	log   *slog.Logger
	ready chan struct{}
	local netip.AddrPort // set before ready is closed

	started atomic.Bool // Run was called

	// The counters Stats reports.
	received, reflected, malformed, foreign, sendErrors atomic.Uint64

	// sessions is owned by Run's read loop.
	sessions map[sessionKey]*session
}

type sessionKey struct {
	from netip.AddrPort
	ssid uint16
}

type session struct {
	next uint32    // the reflector sequence number of the next reply
	last time.Time // when the last packet came
}

const (
	// maxSessions bounds the reflector's per-session state; sessionIdle is
	// how long a session that sends nothing keeps its counter once the
	// table is full. A forgotten session restarts its counter at zero,
	// which a sender reads as a reflector restart.
	maxSessions = 4096
	sessionIdle = time.Minute
	// maxDatagram is the largest datagram read whole without batches (a
	// batch reads batchBuf octets of each); a longer one is truncated,
	// which loses only TLVs this reflector ignores.
	maxDatagram = 2048
	// unknownTTL is the Ses-Sender TTL sent: the received TTL is not read.
	unknownTTL = 255
)

// reflectorErrorEstimate describes the reflector's clock: not known to be
// synchronised to UTC, NTP-format timestamps. Its error bound matters only
// for one-way figures; round trips cancel the clock's offset.
var reflectorErrorEstimate = NewErrorEstimate(false, false, time.Millisecond)

// NewReflector returns a Reflector for cfg; Run starts it. log may be nil.
func NewReflector(cfg ReflectorConfig, log *slog.Logger) (*Reflector, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reflector{
		cfg:      cfg,
		log:      log.With("component", "stamp-reflector"),
		ready:    make(chan struct{}),
		sessions: make(map[sessionKey]*session),
	}, nil
}

// Ready is closed once Run is listening; LocalAddr is valid from then on.
func (r *Reflector) Ready() <-chan struct{} { return r.ready }

// LocalAddr returns the address Run answers on; valid once Ready is closed.
func (r *Reflector) LocalAddr() netip.AddrPort {
	<-r.ready
	return r.local
}

// Stats returns the counters so far. It may be called at any time.
func (r *Reflector) Stats() ReflectorStats {
	return ReflectorStats{
		Received:   r.received.Load(),
		Reflected:  r.reflected.Load(),
		Malformed:  r.malformed.Load(),
		Foreign:    r.foreign.Load(),
		SendErrors: r.sendErrors.Load(),
	}
}

// Run answers test packets until ctx is cancelled, then returns nil after
// closing its socket and stopping the goroutine it started. It returns an
// error when it cannot listen or reading fails. Run may be called once.
func (r *Reflector) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("probe: reflector: Run called twice")
	}
	network := "udp4"
	if r.cfg.Addr.Addr().Is6() {
		network = "udp6"
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, r.cfg.Addr.String())
	if err != nil {
		return fmt.Errorf("probe: reflector: listen on %s: %w", r.cfg.Addr, err)
	}
	uc := pc.(*net.UDPConn)
	r.local = uc.LocalAddr().(*net.UDPAddr).AddrPort()
	conn := wrapUDP(uc)
	close(r.ready)
	r.log.Info("reflecting", "addr", r.local)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		conn.Close()
	})
	err = r.serve(conn)
	close(stop)
	wg.Wait()
	if ctx.Err() != nil {
		r.log.Info("stopped", "addr", r.local)
		return nil
	}
	return err
}

// serve reads and answers until the socket is closed or fails.
func (r *Reflector) serve(conn PacketConn) error {
	if bc, ok := conn.(batchConn); ok {
		return r.serveBatches(bc)
	}
	buf := make([]byte, maxDatagram)
	out := make([]byte, 0, PacketLen)
	for {
		n, from, err := conn.ReadFrom(buf)
		t2 := time.Now()
		if err != nil {
			return r.readError(err)
		}
		r.received.Add(1)
		var ok bool
		if out, ok = r.reply(out[:0], buf[:n], from, t2); !ok {
			continue
		}
		if _, err := conn.WriteTo(out, from); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			r.sendError(from, err)
			continue
		}
		r.reflected.Add(1)
	}
}

// reflectBatch is the most test packets a Reflector reads, and replies it
// sends, in one system call.
const reflectBatch = 8

// serveBatches is serve with a batch of datagrams per system call.
func (r *Reflector) serveBatches(conn batchConn) error {
	in := make([]message, reflectBatch)
	out := make([]message, reflectBatch)
	inBufs := make([]byte, reflectBatch*batchBuf)
	outBufs := make([]byte, reflectBatch*PacketLen)
	for i := range in {
		in[i].Buf = inBufs[i*batchBuf : (i+1)*batchBuf : (i+1)*batchBuf]
		out[i].Buf = outBufs[i*PacketLen : i*PacketLen : (i+1)*PacketLen]
	}
	err := conn.ReadBatches(in, func(in []message) {
		t2 := time.Now()
		r.received.Add(uint64(len(in)))
		k := 0
		for _, m := range in {
			b, ok := r.reply(out[k].Buf[:0], m.Buf[:m.N], m.Addr, t2)
			if ok {
				out[k].Buf, out[k].Addr = b, m.Addr
				k++
			}
		}
		sent := 0
		for i := 0; i < k; {
			n, err := conn.WriteBatch(out[i:k])
			i += n
			sent += n
			if i < k {
				if errors.Is(err, net.ErrClosed) {
					break // and ReadBatches returns
				}
				r.sendError(out[i].Addr, err)
				i++
			}
		}
		r.reflected.Add(uint64(sent))
	})
	return r.readError(err)
}

// reply appends to out the reply to the datagram b that came from from at
// t2, or counts why there is none.
func (r *Reflector) reply(out, b []byte, from netip.AddrPort, t2 time.Time) ([]byte, bool) {
	if foreignSource(from) {
		r.foreign.Add(1)
		r.log.Debug("dropped: foreign source", "from", from)
		return out, false
	}
	out, err := r.answer(out, b, from, t2)
	if err != nil {
		r.malformed.Add(1)
		r.log.Debug("dropped: malformed", "from", from, "err", err)
		return out, false
	}
	return out, true
}

// readError is what serve returns when reading failed with err.
func (r *Reflector) readError(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("probe: reflector: read on %s: %w", r.local, err)
}

func (r *Reflector) sendError(to netip.AddrPort, err error) {
	r.sendErrors.Add(1)
	r.log.Debug("reply not sent", "to", to, "err", err)
}

// answer appends to out the reply to the test packet b that came from from
// at t2. Only the read loop calls it (it owns sessions).
func (r *Reflector) answer(out, b []byte, from netip.AddrPort, t2 time.Time) ([]byte, error) {
	sp, err := ParseSenderPacket(b)
	if err != nil {
		return out, err
	}
	rp := ReflectorPacket{
		Seq:                 r.nextSeq(sessionKey{from, sp.SSID}, t2),
		ErrorEstimate:       reflectorErrorEstimate,
		SSID:                sp.SSID,
		ReceiveTimestamp:    NTPTimestamp(t2),
		SenderSeq:           sp.Seq,
		SenderTimestamp:     sp.Timestamp,
		SenderErrorEstimate: sp.ErrorEstimate,
		SenderTTL:           unknownTTL,
	}
	rp.Timestamp = NTPTimestamp(time.Now())
	return rp.AppendBinary(out)
}

// nextSeq returns the reflector sequence number for a reply in
// session k and advances it. Only the read loop calls it (it owns sessions).
func (r *Reflector) nextSeq(k sessionKey, now time.Time) uint32 {
	s := r.sessions[k]
	if s == nil {
		if len(r.sessions) >= maxSessions {
			r.sweep(now)
		}
		s = &session{}
		r.sessions[k] = s
	}
	s.last = now
	seq := s.next
	s.next++
	return seq
}

// sweep forgets sessions idle for sessionIdle; if none were (a flood
// of new sources), it forgets them all.
func (r *Reflector) sweep(now time.Time) {
	for k, s := range r.sessions {
		if now.Sub(s.last) >= sessionIdle {
			delete(r.sessions, k)
		}
	}
	if len(r.sessions) >= maxSessions {
		clear(r.sessions)
	}
	r.log.Debug("sessions swept", "left", len(r.sessions))
}

// foreignSource reports whether a datagram from a cannot come from a
// Session-Sender that expects a reply.
func foreignSource(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	return a.Port() == 0 || !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
