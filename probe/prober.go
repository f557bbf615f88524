package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ProberConfig says where a Prober sends from and whom it tells.
type ProberConfig struct {
	// Local is the address to send probes from and read replies on: the
	// node's overlay address and port 0 in roamd, so probes go through the
	// tunnels. Required unless Conn is set.
	Local netip.AddrPort
	// Conn, when set, is the socket to use instead of one on Local (tests
	// pass an in-memory network). Run closes it when it returns.
	Conn PacketConn
	// Cost turns a link's figures into its Cost; the zero value means
	// DefaultCostParams.
	Cost CostParams
	// OnChange, when set, is called with a target's Link each time its
	// State or its Cost changes. It is called from the goroutine of Run
	// that probes every target, never with a lock held, one call at a
	// time; it should return quickly.
	OnChange func(Link)
	// Seed seeds the send jitter and session identifiers; 0 draws a random
	// seed (tests set it to replay a run).
	Seed uint64
}

func (c ProberConfig) validate() (ProberConfig, error) {
	if c.Conn == nil && !c.Local.Addr().IsValid() {
		return c, fmt.Errorf("probe: prober Local %q is not an address and port", c.Local)
	}
	if c.Cost == (CostParams{}) {
		c.Cost = DefaultCostParams
	}
	if c.Cost.RTTMax <= c.Cost.RTTMin {
		return c, fmt.Errorf("probe: cost RTTMax %v must be above RTTMin %v", c.Cost.RTTMax, c.Cost.RTTMin)
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return c, nil
}

// ProberStats counts the datagrams a Prober dropped.
type ProberStats struct {
	// Malformed counts datagrams too short to be a STAMP reply.
	Malformed uint64
	// Foreign counts replies from no target, or for another session (an
	// old SSID, another sender's).
	Foreign uint64
	// Overrun counts replies dropped because the Prober was still busy
	// with earlier ones.
	Overrun uint64
	// SendErrors counts probes the socket refused; they count as lost.
	SendErrors uint64
}

// Prober is a STAMP Session-Sender (RFC 8762, unauthenticated) for every
// target: it sends each a probe per interval, jittered 0-25 % as BFD does,
// matches the replies, and keeps per target the figures, a Machine's up/down
// state and a cost (see Link). All targets share one socket. One goroutine
// owns every target's state: it sends the probes due together in one batch
// and takes the replies from a read loop in batches (one system call each
// way per batch on Linux).
type Prober struct {
	cfg     ProberConfig
	log     *slog.Logger
	started atomic.Bool
	kick    chan struct{} // 1-buffered: the targets changed

	malformed, foreign, overrun, sendErrors atomic.Uint64

	// mu guards the fields below it.
	mu       sync.Mutex
	targets  []Target                          // wanted, as SetTargets gave them
	sessions map[netip.AddrPort]*senderSession // running, by target address
}

// NewProber returns a Prober with no targets; SetTargets gives it some, Run
// starts it. log may be nil.
func NewProber(cfg ProberConfig, log *slog.Logger) (*Prober, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Prober{
		cfg:      cfg,
		log:      log.With("component", "prober"),
		kick:     make(chan struct{}, 1),
		sessions: make(map[netip.AddrPort]*senderSession),
	}, nil
}

// SetTargets makes ts the targets: new ones start being probed, gone ones
// stop, changed ones start afresh (state down, no figures). It validates
// every target first and changes nothing if one is invalid. It may be called
// at any time, before or during Run.
func (p *Prober) SetTargets(ts []Target) error {
	seen := make(map[netip.AddrPort]int, len(ts))
	next := slices.Clone(ts)
	for i, t := range next {
		if t.Name == "" {
			return fmt.Errorf("probe: target %d (%s): Name is empty", i, t.Addr)
		}
		if !t.Addr.Addr().IsValid() || t.Addr.Port() == 0 {
			return fmt.Errorf("probe: target %d (%s): Addr %q is not an address and port", i, t.Name, t.Addr)
		}
		if j, ok := seen[t.Addr]; ok {
			return fmt.Errorf("probe: targets %d (%s) and %d (%s) have the same Addr %s", j, next[j].Name, i, t.Name, t.Addr)
		}
		seen[t.Addr] = i
		cfg, err := t.Config.validate()
		if err != nil {
			return fmt.Errorf("probe: target %d (%s): %w", i, t.Name, err)
		}
		next[i].Config = cfg
	}
	p.mu.Lock()
	p.targets = next
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return nil
}

// Links returns what is known of every target being probed, in the order
// SetTargets gave them. Before Run, and for targets Run has not started
// yet, it returns nothing.
func (p *Prober) Links() []Link {
	p.mu.Lock()
	ss := make([]*senderSession, 0, len(p.targets))
	for _, t := range p.targets {
		if s := p.sessions[t.Addr]; s != nil {
			ss = append(ss, s)
		}
	}
	p.mu.Unlock()
	out := make([]Link, len(ss))
	for i, s := range ss {
		out[i] = s.snapshot()
	}
	return out
}

// Stats returns the drop counters so far.
func (p *Prober) Stats() ProberStats {
	return ProberStats{
		Malformed:  p.malformed.Load(),
		Foreign:    p.foreign.Load(),
		Overrun:    p.overrun.Load(),
		SendErrors: p.sendErrors.Load(),
	}
}

// Run probes the targets until ctx is cancelled, then closes the socket and
// returns nil once every goroutine it started has exited. It returns an
// error when it cannot open its socket or reading from it fails. Run may be
// called once.
func (p *Prober) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("probe: prober: Run called twice")
	}
	conn := p.cfg.Conn
	if conn == nil {
		c, local, err := listenUDP(ctx, p.cfg.Local)
		if err != nil {
			return err
		}
		conn = c
		p.log.Info("probing", "from", local)
	}
	rng := rand.New(rand.NewPCG(p.cfg.Seed, p.cfg.Seed>>1|1))
	run, cancel := context.WithCancel(ctx)
	sc := newScheduler(p, conn, rng)
	var wg sync.WaitGroup
	readErr := make(chan error, 1)
	wg.Go(func() { readErr <- p.read(run, conn, sc.in) })
	err := sc.run(run, readErr)
	cancel()
	conn.Close()
	wg.Wait()
	p.mu.Lock()
	clear(p.sessions)
	p.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// read queues the replies for the scheduler until the socket closes.
func (p *Prober) read(ctx context.Context, conn PacketConn, in *inbox) error {
	var err error
	if bc, ok := conn.(batchConn); ok {
		ms := make([]message, maxBatch)
		bufs := make([]byte, maxBatch*batchBuf)
		for i := range ms {
			ms[i].Buf = bufs[i*batchBuf : (i+1)*batchBuf : (i+1)*batchBuf]
		}
		rs := make([]reply, 0, maxBatch)
		err = bc.ReadBatches(ms, func(ms []message) { rs = p.queue(in, rs[:0], ms, time.Now()) })
	} else {
		ms := []message{{Buf: make([]byte, maxDatagram)}}
		rs := make([]reply, 0, 1)
		for err == nil {
			ms[0].N, ms[0].Addr, err = conn.ReadFrom(ms[0].Buf)
			if err == nil {
				rs = p.queue(in, rs[:0], ms, time.Now())
			}
		}
	}
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("probe: prober: read: %w", err)
}

// queue parses the datagrams ms, read at at, and queues the replies among
// them for the scheduler, using rs as its buffer.
func (p *Prober) queue(in *inbox, rs []reply, ms []message, at time.Time) []reply {
	for _, m := range ms {
		rp, err := ParseReflectorPacket(m.Buf[:m.N])
		if err != nil {
			p.malformed.Add(1)
			p.log.Debug("dropped: malformed", "from", m.Addr, "err", err)
			continue
		}
		rs = append(rs, reply{from: netip.AddrPortFrom(m.Addr.Addr().Unmap(), m.Addr.Port()), pkt: rp, at: at})
	}
	if len(rs) > 0 {
		if dropped := in.put(rs); dropped > 0 {
			p.overrun.Add(uint64(dropped))
		}
	}
	return rs
}
