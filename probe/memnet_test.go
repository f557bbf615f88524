package probe

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// memNet is an in-memory network for a Prober under testing/synctest: each
// target address has a path with a one-way delay, uniform jitter, loss per
// direction and a cut switch, and a Reflector at the far end answering as
// the real one does.
type memNet struct {
	self   netip.AddrPort
	inbox  chan memDatagram
	closed chan struct{}
	once   sync.Once

	mu    sync.Mutex
	rng   *rand.Rand
	paths map[netip.AddrPort]*memPath
}

type memPath struct {
	oneWay, jitter    time.Duration
	lossFwd, lossBack float64
	cut               bool
	holdUntil         time.Time // probes sent before it arrive at it (a tunnel waiting for its handshake)
	held              int
	refl              *Reflector
	stateless         bool // echo the sender's sequence number
}

type memDatagram struct {
	b    []byte
	from netip.AddrPort
}

func newMemNet(seed uint64) *memNet {
	return &memNet{
		self:   netip.MustParseAddrPort("100.64.0.1:40000"),
		inbox:  make(chan memDatagram, 1024),
		closed: make(chan struct{}),
		rng:    rand.New(rand.NewPCG(seed, seed)),
		paths:  make(map[netip.AddrPort]*memPath),
	}
}

// path adds or returns the path to addr.
func (n *memNet) path(addr netip.AddrPort) *memPath {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.paths[addr]; p != nil {
		return p
	}
	r, err := NewReflector(ReflectorConfig{Addr: addr}, nil)
	if err != nil {
		panic(err)
	}
	p := &memPath{oneWay: 5 * time.Millisecond, refl: r}
	n.paths[addr] = p
	return p
}

// set changes the path to addr under the network's lock.
func (n *memNet) set(addr netip.AddrPort, f func(p *memPath)) {
	p := n.path(addr)
	n.mu.Lock()
	f(p)
	n.mu.Unlock()
}

func (n *memNet) delay(p *memPath) time.Duration {
	d := p.oneWay
	if p.jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(2*p.jitter))) - p.jitter
	}
	return max(d, 0)
}

func (n *memNet) WriteTo(b []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-n.closed:
		return 0, net.ErrClosed
	default:
	}
	n.mu.Lock()
	p := n.paths[addr]
	if p == nil || p.cut || n.rng.Float64() < p.lossFwd {
		n.mu.Unlock()
		return len(b), nil
	}
	d := n.delay(p)
	if wait := time.Until(p.holdUntil); wait > 0 {
		// Released in the order sent, a microsecond apart, as a tunnel
		// sends its queue.
		p.held++
		d += wait + time.Duration(p.held)*time.Microsecond
	}
	n.mu.Unlock()
	pkt := append([]byte(nil), b...)
	time.AfterFunc(d, func() { n.reflect(addr, p, pkt) })
	return len(b), nil
}

// reflect answers a probe that reached addr and sends the answer back.
func (n *memNet) reflect(addr netip.AddrPort, p *memPath, pkt []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out, err := p.refl.answer(nil, pkt, n.self, time.Now())
	if err != nil || p.cut || n.rng.Float64() < p.lossBack {
		return
	}
	if p.stateless {
		copy(out[0:4], pkt[0:4])
	}
	time.AfterFunc(n.delay(p), func() {
		select {
		case n.inbox <- memDatagram{out, addr}:
		case <-n.closed:
		}
	})
}

// inject delivers a datagram to the Prober as if from from.
func (n *memNet) inject(b []byte, from netip.AddrPort) {
	n.inbox <- memDatagram{b, from}
}

func (n *memNet) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-n.inbox:
		return copy(b, d.b), d.from, nil
	case <-n.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (n *memNet) Close() error {
	n.once.Do(func() { close(n.closed) })
	return nil
}
