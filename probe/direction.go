package probe

// Directions estimates the loss in each direction from STAMP sequence
// numbers: the sender's own (ours, one per probe sent) and the reflector's
// (one per reply it sent, RFC 8762 stateful mode with a counter per
// session). Between two replies, the reflector's counter advanced by the
// probes that reached it, ours by the probes sent; and we received some of
// the replies it sent.
//
// It covers the last half to whole of a window of N probes, in two buckets of
// N/2 sender sequence numbers, so it stays a small value. Feed it only
// replies from a reflector known to keep its own counter: a stateless
// reflector echoes our number, which reads as no forward loss.
type Directions struct {
	span      uint32 // sender sequence numbers per bucket
	cur, prev bucket
}

type bucket struct {
	ok          bool
	first, last seqPair
	n           int // replies received in [first, last]
}

type seqPair struct{ sender, reflector uint32 }

// NewDirections returns an estimator over windows of about n probes (n >= 2).
func NewDirections(n int) Directions {
	return Directions{span: uint32(max(n/2, 1))}
}

// Add returns d updated with one received reply: our sequence number and the
// reflector's. A reply older than the newest seen (reordered or duplicated)
// is ignored; a reflector counter that went back (the reflector restarted)
// starts the estimate afresh.
func (d Directions) Add(sender, reflector uint32) Directions {
	p := seqPair{sender, reflector}
	if !d.cur.ok {
		d.cur = bucket{ok: true, first: p, last: p, n: 1}
		return d
	}
	ds, dr := p.sender-d.cur.last.sender, p.reflector-d.cur.last.reflector
	if ds == 0 || ds >= 1<<31 {
		return d
	}
	if dr >= 1<<31 {
		return Directions{span: d.span}.Add(sender, reflector)
	}
	if p.sender-d.cur.first.sender >= d.span {
		d.prev, d.cur = d.cur, bucket{ok: true, first: p, last: p, n: 1}
		return d
	}
	d.cur.last = p
	d.cur.n++
	return d
}

// Loss returns the forward (to the reflector) and backward loss fractions
// and whether there was enough to tell: at least two replies in the window.
// They are clamped to [0, 1]; (1-forward)*(1-backward) is the fraction of
// probes that came back.
func (d Directions) Loss() (forward, backward float64, ok bool) {
	first, n := d.cur.first, d.cur.n
	if d.prev.ok && d.cur.first.sender-d.prev.first.sender < 2*d.span {
		first, n = d.prev.first, d.prev.n+d.cur.n
	}
	if n < 2 {
		return 0, 0, false
	}
	last := d.cur.last
	sent := float64(last.sender-first.sender) + 1
	reflected := float64(last.reflector-first.reflector) + 1
	return clamp01(1 - reflected/sent), clamp01(1 - float64(n)/reflected), true
}

func clamp01(x float64) float64 {
	return min(max(x, 0), 1)
}
