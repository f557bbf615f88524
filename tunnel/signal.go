package tunnel

import (
	"container/list"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/nacl/box"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api/roampb"
)

const (
	// SignalPort is the UDP port of signalling on every node's overlay
	// address. A hub relays to the recipient's overlay address at the port
	// it listens on itself.
	SignalPort = 7471
	// MaxSignalSize is the largest signalling datagram (a marshalled
	// roampb.SignalEnvelope) in bytes.
	MaxSignalSize = 4096
	// MaxSignalHops is the most relays an envelope may cross.
	MaxSignalHops = 2
	// MaxSignalSkew is how far a Signal's sent time may be from the
	// recipient's clock, either way.
	MaxSignalSkew = 5 * time.Minute
	// signalPeers bounds the per-peer state of a Sealer: precomputed box
	// keys and replay windows, each for this many peers at most.
	signalPeers = 4096
	// signalHopsRoom is what a relay's hops count adds at most to an
	// envelope (tag and one-byte varint); Seal leaves room for it.
	signalHopsRoom = 2
)

// Bounds of a Signal's contents (RFC 8445 section 5.3 for ufrag and pwd).
const (
	minUfrag        = 4
	minPwd          = 22
	maxIceString    = 256
	maxCandidates   = 64
	maxCandidateLen = 512
	maxMembers      = 1024
	maxMemberList   = 64  // addresses and endpoints of one member
	maxShortString  = 256 // names, reasons, addresses, endpoints
)

// Reasons Open and Route drop a datagram. Each error they return wraps one.
var (
	ErrSignalTooLarge         = errors.New("too large")
	ErrSignalMalformed        = errors.New("malformed")
	ErrSignalNotForUs         = errors.New("not for this node")
	ErrSignalUnknownSender    = errors.New("unknown sender")
	ErrSignalForged           = errors.New("forged or corrupted")
	ErrSignalStale            = errors.New("stale")
	ErrSignalReplay           = errors.New("replayed")
	ErrSignalHops             = errors.New("too many hops")
	ErrSignalUnknownRecipient = errors.New("unknown recipient")
	ErrSignalSpoofed          = errors.New("sender key not at source address")
)

// signalDrops names each drop reason for counters ("dropped_" + name).
var signalDrops = []struct {
	err  error
	name string
}{
	{ErrSignalTooLarge, "too_large"},
	{ErrSignalMalformed, "malformed"},
	{ErrSignalNotForUs, "not_for_us"},
	{ErrSignalUnknownSender, "unknown_sender"},
	{ErrSignalForged, "forged"},
	{ErrSignalStale, "stale"},
	{ErrSignalReplay, "replay"},
	{ErrSignalHops, "hops"},
	{ErrSignalUnknownRecipient, "unknown_recipient"},
	{ErrSignalSpoofed, "spoofed"},
}

// signalDropName is the counter name of err's drop reason; "other" for an
// error that wraps none.
func signalDropName(err error) string {
	for _, d := range signalDrops {
		if errors.Is(err, d.err) {
			return d.name
		}
	}
	return "other"
}

// lowOrderShared is the box key box.Precompute derives from a low-order
// public key: such a key makes the Curve25519 shared secret all zeros,
// whatever the private key, so anyone could seal and open with it.
var lowOrderShared = func() (k [32]byte) {
	var zeroPoint, priv [32]byte
	priv[0] = 1
	box.Precompute(&k, &zeroPoint, &priv)
	return k
}()

// Sealer seals a node's outgoing Signals and opens incoming ones with NaCl
// box from the node's WireGuard key: the sender's private key and the
// recipient's public key, so only the two ends can read or make one. It
// drops replays with a window over each sender's seq. It does no I/O and is
// safe for concurrent use.
type Sealer struct {
	priv, pub wgtypes.Key
	known     func(wgtypes.Key) bool
	now       func() time.Time // the clock; tests replace it

	mu      sync.Mutex
	seq     uint64                          // last seq sealed
	shared  *signalLRU[*[32]byte]           // precomputed box keys by peer
	windows *signalLRU[*signalReplayWindow] // by sender
}

// NewSealer returns the Sealer of the node whose WireGuard private key is
// priv. known tells whether a public key belongs to a node this one accepts
// Signals from (its peers and the hub's directory); nil accepts none. It is
// called on every Open, outside any lock.
func NewSealer(priv wgtypes.Key, known func(wgtypes.Key) bool) *Sealer {
	if known == nil {
		known = func(wgtypes.Key) bool { return false }
	}
	return &Sealer{
		priv:    priv,
		pub:     priv.PublicKey(),
		known:   known,
		now:     time.Now,
		shared:  newSignalLRU[*[32]byte](signalPeers),
		windows: newSignalLRU[*signalReplayWindow](signalPeers),
	}
}

// PublicKey is the node's public key: the from of what it seals.
func (s *Sealer) PublicKey() wgtypes.Key { return s.pub }

// Seal seals m for the node whose public key is to and returns the
// marshalled roampb.SignalEnvelope. It sets m.Seq to the sender's next
// counter: the Sealer's start time in seconds in the high 32 bits, so it
// keeps increasing across restarts a second or more apart, and a count in
// the low ones, so that consecutive signals are consecutive seqs and the
// replay window (128 seqs) takes them in any order. It sets m.Sent to now
// if it is unset. It refuses a Signal the recipient would drop as
// malformed, and one that does not fit in MaxSignalSize.
func (s *Sealer) Seal(to wgtypes.Key, m *roampb.Signal) ([]byte, error) {
	if err := checkSignal(m); err != nil {
		return nil, fmt.Errorf("tunnel: signal: seal for %s: %w", to, err)
	}
	key, err := s.sharedKey(to)
	if err != nil {
		return nil, fmt.Errorf("tunnel: signal: seal for %s: %w", to, err)
	}
	now := s.now()
	s.mu.Lock()
	if s.seq == 0 {
		s.seq = uint64(now.Unix()) << 32
	}
	s.seq++
	m.Seq = s.seq
	s.mu.Unlock()
	if m.Sent == nil {
		m.Sent = timestamppb.New(now)
	}
	inner, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("tunnel: signal: seal for %s: %w: %w", to, err, ErrSignalMalformed)
	}
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("tunnel: signal: seal for %s: nonce: %w", to, err)
	}
	pkt, err := proto.Marshal(&roampb.SignalEnvelope{
		To:    to[:],
		From:  s.pub[:],
		Nonce: nonce[:],
		Box:   box.SealAfterPrecomputation(nil, inner, &nonce, key),
	})
	if err != nil {
		return nil, fmt.Errorf("tunnel: signal: seal for %s: envelope: %w", to, err)
	}
	if len(pkt)+signalHopsRoom > MaxSignalSize {
		return nil, fmt.Errorf("tunnel: signal: seal for %s: %d bytes sealed, more than %d: %w",
			to, len(pkt), MaxSignalSize-signalHopsRoom, ErrSignalTooLarge)
	}
	return pkt, nil
}

// Open opens a signalling datagram addressed to this node and returns its
// authenticated sender and Signal. It checks, in this order: the size, the
// envelope, that it is for this node, that the sender is known, that the box
// opens, the Signal's contents, its sent time against the clock, and its seq
// against the sender's replay window. The window moves only for a Signal
// that passed every other check, so nobody but the sender can move it. On
// error from is the zero key and the error wraps one of the ErrSignal
// sentinels.
//
// Replay windows live in memory, for the 4096 most recently heard senders:
// after this node restarts, or after a sender's window was evicted, a
// Signal of that sender from the last MaxSignalSkew can be accepted once
// more. Its session tells a stale ICE message from a current one.
func (s *Sealer) Open(pkt []byte) (from wgtypes.Key, m *roampb.Signal, err error) {
	env, err := parseSignalEnvelope(pkt)
	if err != nil {
		return wgtypes.Key{}, nil, err
	}
	to, sender := wgtypes.Key(env.To), wgtypes.Key(env.From)
	if to != s.pub {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: addressed to %s, this node is %s: %w",
			sender, to, s.pub, ErrSignalNotForUs)
	}
	if !s.known(sender) {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: %w", sender, ErrSignalUnknownSender)
	}
	key, err := s.sharedKey(sender)
	if err != nil {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: %w", sender, err)
	}
	inner, ok := box.OpenAfterPrecomputation(nil, env.Box, (*[24]byte)(env.Nonce), key)
	if !ok {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: box does not open: %w", sender, ErrSignalForged)
	}
	m = new(roampb.Signal)
	if err := proto.Unmarshal(inner, m); err != nil {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: signal: %w: %w", sender, err, ErrSignalMalformed)
	}
	if err := checkSignal(m); err != nil {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: %w", sender, err)
	}
	if m.Seq == 0 {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: no seq: %w", sender, ErrSignalMalformed)
	}
	if m.Sent == nil {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: no sent time: %w", sender, ErrSignalMalformed)
	}
	if err := m.Sent.CheckValid(); err != nil {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: sent time: %w: %w", sender, err, ErrSignalMalformed)
	}
	now := s.now()
	if skew := m.Sent.AsTime().Sub(now); skew > MaxSignalSkew || skew < -MaxSignalSkew {
		ahead := "ahead of"
		if skew < 0 {
			ahead, skew = "behind", -skew
		}
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: sent %s, %s %s this node's clock (at most %s): %w",
			sender, m.Sent.AsTime().Format(time.RFC3339), skew.Round(time.Second), ahead, MaxSignalSkew, ErrSignalStale)
	}
	if err := s.acceptSeq(sender, m.Seq); err != nil {
		return wgtypes.Key{}, nil, fmt.Errorf("tunnel: signal: from %s: %w", sender, err)
	}
	return sender, m, nil
}

// acceptSeq moves sender's replay window to seq, or says why seq is
// refused.
func (s *Sealer) acceptSeq(sender wgtypes.Key, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.windows.get(sender)
	if !ok {
		w = new(signalReplayWindow)
		s.windows.put(sender, w)
	}
	if !w.fresh(seq) {
		if seq+signalReplayWindowSize <= w.top {
			return fmt.Errorf("seq %d older than the window (highest seen %d): %w", seq, w.top, ErrSignalReplay)
		}
		return fmt.Errorf("seq %d seen before: %w", seq, ErrSignalReplay)
	}
	w.accept(seq)
	return nil
}

// sharedKey returns the box key this node shares with peer, precomputing it
// on first use.
func (s *Sealer) sharedKey(peer wgtypes.Key) (*[32]byte, error) {
	s.mu.Lock()
	key, ok := s.shared.get(peer)
	s.mu.Unlock()
	if ok {
		return key, nil
	}
	key = new([32]byte)
	box.Precompute(key, (*[32]byte)(&peer), (*[32]byte)(&s.priv))
	if subtle.ConstantTimeCompare(key[:], lowOrderShared[:]) == 1 {
		return nil, fmt.Errorf("public key %s is a low-order point: %w", peer, ErrSignalMalformed)
	}
	s.mu.Lock()
	s.shared.put(peer, key)
	s.mu.Unlock()
	return key, nil
}

// parseSignalEnvelope unmarshals a signalling datagram and checks the
// envelope's sizes, not its box.
func parseSignalEnvelope(pkt []byte) (*roampb.SignalEnvelope, error) {
	if len(pkt) > MaxSignalSize {
		return nil, fmt.Errorf("tunnel: signal: %d bytes, more than %d: %w", len(pkt), MaxSignalSize, ErrSignalTooLarge)
	}
	env := new(roampb.SignalEnvelope)
	if err := proto.Unmarshal(pkt, env); err != nil {
		return nil, fmt.Errorf("tunnel: signal: envelope: %w: %w", err, ErrSignalMalformed)
	}
	for _, f := range []struct {
		name string
		b    []byte
		want int
	}{{"to", env.To, 32}, {"from", env.From, 32}, {"nonce", env.Nonce, 24}} {
		if len(f.b) != f.want {
			return nil, fmt.Errorf("tunnel: signal: envelope: %s is %d bytes, want %d: %w", f.name, len(f.b), f.want, ErrSignalMalformed)
		}
	}
	if len(env.Box) < box.Overhead {
		return nil, fmt.Errorf("tunnel: signal: from %s: box is %d bytes, less than its %d bytes of overhead: %w",
			wgtypes.Key(env.From), len(env.Box), box.Overhead, ErrSignalMalformed)
	}
	return env, nil
}

// checkSignal checks that m has a body and that everything in it is within
// bounds. Its errors wrap ErrSignalMalformed.
func checkSignal(m *roampb.Signal) error {
	var err error
	switch b := m.GetBody().(type) {
	case nil:
		err = errors.New("no body")
	case *roampb.Signal_Offer:
		err = checkIce("offer", b.Offer.GetUfrag(), b.Offer.GetPwd(), b.Offer.GetCandidates())
	case *roampb.Signal_Answer:
		err = checkIce("answer", b.Answer.GetUfrag(), b.Answer.GetPwd(), b.Answer.GetCandidates())
	case *roampb.Signal_Candidates:
		err = checkCandidates("candidates", b.Candidates.GetCandidates())
	case *roampb.Signal_Restart:
		err = checkLen("restart: reason", b.Restart.GetReason(), 0, maxShortString)
	case *roampb.Signal_Directory:
		err = checkDirectory(b.Directory)
	case *roampb.Signal_DirectoryRequest, *roampb.Signal_Ping:
	default:
		err = fmt.Errorf("unknown body %T", b)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrSignalMalformed)
	}
	return nil
}

func checkIce(what, ufrag, pwd string, cands []string) error {
	if err := checkIceChars(what+": ufrag", ufrag, minUfrag); err != nil {
		return err
	}
	if err := checkIceChars(what+": pwd", pwd, minPwd); err != nil {
		return err
	}
	return checkCandidates(what, cands)
}

// checkIceChars checks an ICE ufrag or pwd: min to 256 ice-chars (RFC 8445
// section 5.3: letters, digits, '+' and '/').
func checkIceChars(what, s string, minLen int) error {
	if err := checkLen(what, s, minLen, maxIceString); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return fmt.Errorf("%s: byte %d is %q, not an ice-char", what, i, c)
		}
	}
	return nil
}

func checkCandidates(what string, cands []string) error {
	if len(cands) > maxCandidates {
		return fmt.Errorf("%s: %d candidates, more than %d", what, len(cands), maxCandidates)
	}
	for i, c := range cands {
		if err := checkLen(fmt.Sprintf("%s: candidate %d", what, i), c, 1, maxCandidateLen); err != nil {
			return err
		}
	}
	return nil
}

func checkDirectory(d *roampb.Directory) error {
	if n := len(d.GetMembers()); n > maxMembers {
		return fmt.Errorf("directory: %d members, more than %d", n, maxMembers)
	}
	for i, mb := range d.GetMembers() {
		what := fmt.Sprintf("directory: member %d", i)
		if err := checkLen(what+": name", mb.GetName(), 0, maxShortString); err != nil {
			return err
		}
		if n := len(mb.GetPublicKey()); n != 32 {
			return fmt.Errorf("%s: public key is %d bytes, want 32", what, n)
		}
		for _, l := range []struct {
			name string
			s    []string
		}{{"addresses", mb.GetAddresses()}, {"endpoints", mb.GetEndpoints()}} {
			if len(l.s) > maxMemberList {
				return fmt.Errorf("%s: %d %s, more than %d", what, len(l.s), l.name, maxMemberList)
			}
			for j, s := range l.s {
				if err := checkLen(fmt.Sprintf("%s: %s %d", what, l.name, j), s, 1, maxShortString); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkLen(what, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		return fmt.Errorf("%s is %d bytes, want %d to %d", what, len(s), minLen, maxLen)
	}
	return nil
}

// signalReplayWindowSize is how many seqs below the highest one seen a
// replay window still accepts once each.
const signalReplayWindowSize = 128

// signalReplayWindow is a sliding window over one sender's seqs (the idea
// of RFC 6479 and WireGuard's replay filter): a seq is accepted once, if it
// is above the highest seen or one of the 127 below it not seen yet.
type signalReplayWindow struct {
	top  uint64    // highest seq accepted; 0 before the first
	seen [2]uint64 // bit i (word i/64, bit i%64): seq top-i was accepted
}

// fresh reports whether seq would be accepted. seq 0 never is.
func (w *signalReplayWindow) fresh(seq uint64) bool {
	if seq > w.top {
		return true
	}
	d := w.top - seq
	if d >= signalReplayWindowSize || seq == 0 {
		return false
	}
	return w.seen[d/64]&(1<<(d%64)) == 0
}

// accept records seq, which fresh accepted.
func (w *signalReplayWindow) accept(seq uint64) {
	if seq > w.top {
		switch n := seq - w.top; {
		case n >= 128:
			w.seen = [2]uint64{}
		case n >= 64:
			w.seen = [2]uint64{0, w.seen[0] << (n - 64)}
		default:
			w.seen = [2]uint64{w.seen[0] << n, w.seen[1]<<n | w.seen[0]>>(64-n)}
		}
		w.top = seq
	}
	d := w.top - seq
	w.seen[d/64] |= 1 << (d % 64)
}

// signalLRU maps peers' keys to values, keeping the most recently used max
// of them. Not safe for concurrent use.
type signalLRU[V any] struct {
	max   int
	items map[wgtypes.Key]*list.Element // Value: *signalLRUItem[V]
	order *list.List                    // front: most recently used
}

type signalLRUItem[V any] struct {
	key wgtypes.Key
	val V
}

func newSignalLRU[V any](size int) *signalLRU[V] {
	return &signalLRU[V]{max: size, items: make(map[wgtypes.Key]*list.Element), order: list.New()}
}

func (l *signalLRU[V]) get(k wgtypes.Key) (V, bool) {
	e, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*signalLRUItem[V]).val, true
}

// put adds or replaces k, evicting the least recently used entry if the
// map is full.
func (l *signalLRU[V]) put(k wgtypes.Key, v V) {
	if e, ok := l.items[k]; ok {
		e.Value.(*signalLRUItem[V]).val = v
		l.order.MoveToFront(e)
		return
	}
	for l.order.Len() >= l.max {
		old := l.order.Back()
		delete(l.items, old.Value.(*signalLRUItem[V]).key)
		l.order.Remove(old)
	}
	l.items[k] = l.order.PushFront(&signalLRUItem[V]{key: k, val: v})
}

func (l *signalLRU[V]) len() int { return l.order.Len() }
