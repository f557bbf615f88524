package tunnel

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api/roampb"
)

// signalEpoch is the fake clocks' time.
var signalEpoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newTestKey(t testing.TB) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// knownKeys accepts the public keys of privs.
func knownKeys(privs ...wgtypes.Key) func(wgtypes.Key) bool {
	m := map[wgtypes.Key]bool{}
	for _, p := range privs {
		m[p.PublicKey()] = true
	}
	return func(k wgtypes.Key) bool { return m[k] }
}

// newTestSealer returns a Sealer whose clock is *now.
func newTestSealer(priv wgtypes.Key, now *time.Time, known ...wgtypes.Key) *Sealer {
	s := NewSealer(priv, knownKeys(known...))
	s.now = func() time.Time { return *now }
	return s
}

func testOffer() *roampb.Signal {
	return &roampb.Signal{Session: 3, Body: &roampb.Signal_Offer{Offer: &roampb.IceOffer{
		Ufrag:      "UfRg",
		Pwd:        "abcdefghijklmnopqrstu+/",
		Candidates: []string{"1 1 udp 2130706431 192.0.2.1 51820 typ host", "2 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 0.0.0.0 rport 51820"},
	}}}
}

// sealRaw seals inner from priv to to as Seal would, without checking it,
// and lets edit change the envelope.
func sealRaw(t testing.TB, priv, to wgtypes.Key, inner []byte, edit func(*roampb.SignalEnvelope)) []byte {
	t.Helper()
	var nonce [24]byte
	nonce[0] = byte(rand.Uint32())
	nonce[1] = byte(rand.Uint32())
	nonce[2] = byte(rand.Uint32())
	pub := priv.PublicKey()
	env := &roampb.SignalEnvelope{
		To: to[:], From: pub[:], Nonce: nonce[:],
		Box: box.Seal(nil, inner, &nonce, (*[32]byte)(&to), (*[32]byte)(&priv)),
	}
	if edit != nil {
		edit(env)
	}
	b, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sealSignal marshals m as it is (seq and sent included) and seals it.
func sealSignal(t testing.TB, priv, to wgtypes.Key, m *roampb.Signal) []byte {
	t.Helper()
	inner, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return sealRaw(t, priv, to, inner, nil)
}

func TestSealerRoundTrip(t *testing.T) {
	now := signalEpoch
	a, b := newTestKey(t), newTestKey(t)
	sa, sb := newTestSealer(a, &now), newTestSealer(b, &now, a)
	member := b.PublicKey()
	tests := []struct {
		name string
		m    *roampb.Signal
	}{
		{"offer", testOffer()},
		{"answer", &roampb.Signal{Body: &roampb.Signal_Answer{Answer: &roampb.IceAnswer{
			Ufrag: "abcd", Pwd: strings.Repeat("p", 22), Candidates: []string{"1 1 udp 1 192.0.2.2 1 typ host"}}}}},
		{"candidates", &roampb.Signal{Session: 9, Body: &roampb.Signal_Candidates{Candidates: &roampb.IceCandidates{
			Candidates: []string{strings.Repeat("c", maxCandidateLen)}, Done: true}}}},
		{"candidates done, none", &roampb.Signal{Body: &roampb.Signal_Candidates{Candidates: &roampb.IceCandidates{Done: true}}}},
		{"restart", &roampb.Signal{Session: 4, Body: &roampb.Signal_Restart{Restart: &roampb.IceRestart{Reason: "underlay changed"}}}},
		{"directory", &roampb.Signal{Body: &roampb.Signal_Directory{Directory: &roampb.Directory{Members: []*roampb.Member{
			{Name: "b", PublicKey: member[:], Addresses: []string{"100.64.0.2/32", "fd64::2/128"}, Endpoints: []string{"192.0.2.2:51820"}},
			{Name: "hub", PublicKey: member[:], Hub: true},
		}}}}},
		{"directory request", &roampb.Signal{Body: &roampb.Signal_DirectoryRequest{DirectoryRequest: &roampb.DirectoryRequest{}}}},
		{"ping", &roampb.Signal{Body: &roampb.Signal_Ping{Ping: &roampb.Ping{}}}},
	}
	var lastSeq uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, err := sa.Seal(b.PublicKey(), tt.m)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if tt.m.Seq <= lastSeq || !tt.m.Sent.AsTime().Equal(now) {
				t.Errorf("Seal set seq %d (last %d), sent %v: want a higher seq, sent %v", tt.m.Seq, lastSeq, tt.m.Sent.AsTime(), now)
			}
			lastSeq = tt.m.Seq
			from, got, err := sb.Open(pkt)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if from != a.PublicKey() {
				t.Errorf("from = %s, want %s", from, a.PublicKey())
			}
			if !proto.Equal(got, tt.m) {
				t.Errorf("Open = %v, want %v", got, tt.m)
			}
		})
	}
}

func TestSealerOpenRejects(t *testing.T) {
	now := signalEpoch
	a, b, c, d := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	var lowOrder wgtypes.Key // the zero point, which "known" accepts below
	sb := NewSealer(b, func(k wgtypes.Key) bool { return k == lowOrder || knownKeys(a, d)(k) })
	sb.now = func() time.Time { return now }
	sa := newTestSealer(a, &now)
	bPub, dPub := b.PublicKey(), d.PublicKey()

	seq := uint64(1000)
	// valid returns a valid Signal from a to b with a fresh seq, for edit to
	// spoil.
	valid := func(edit func(*roampb.Signal)) *roampb.Signal {
		seq++
		m := testOffer()
		m.Seq, m.Sent = seq, timestamppb.New(now)
		if edit != nil {
			edit(m)
		}
		return m
	}
	offer := func(f func(o *roampb.IceOffer)) func(*roampb.Signal) {
		return func(m *roampb.Signal) { f(m.GetOffer()) }
	}
	fromA := func(m *roampb.Signal) []byte { return sealSignal(t, a, bPub, m) }
	sealed, err := sa.Seal(bPub, testOffer())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"too large", make([]byte, MaxSignalSize+1), ErrSignalTooLarge},
		{"not protobuf", []byte{0xff, 0xff, 0xff}, ErrSignalMalformed},
		{"empty", nil, ErrSignalMalformed},
		{"short nonce", sealRaw(t, a, bPub, []byte("x"), func(e *roampb.SignalEnvelope) { e.Nonce = e.Nonce[:23] }), ErrSignalMalformed},
		{"short to", sealRaw(t, a, bPub, []byte("x"), func(e *roampb.SignalEnvelope) { e.To = e.To[:31] }), ErrSignalMalformed},
		{"short box", sealRaw(t, a, bPub, []byte("x"), func(e *roampb.SignalEnvelope) { e.Box = e.Box[:box.Overhead-1] }), ErrSignalMalformed},
		{"for another node", sealSignal(t, a, c.PublicKey(), valid(nil)), ErrSignalNotForUs},
		{"unknown sender", sealSignal(t, c, bPub, valid(nil)), ErrSignalUnknownSender},
		{"flipped box byte", func() []byte {
			return sealRaw(t, a, bPub, mustMarshal(t, valid(nil)), func(e *roampb.SignalEnvelope) { e.Box[len(e.Box)-1] ^= 1 })
		}(), ErrSignalForged},
		{"flipped nonce byte", sealRaw(t, a, bPub, mustMarshal(t, valid(nil)), func(e *roampb.SignalEnvelope) { e.Nonce[5] ^= 1 }), ErrSignalForged},
		{"another known sender's key", sealRaw(t, a, bPub, mustMarshal(t, valid(nil)), func(e *roampb.SignalEnvelope) { e.From = dPub[:] }), ErrSignalForged},
		{"low-order sender key", sealRaw(t, a, bPub, mustMarshal(t, valid(nil)), func(e *roampb.SignalEnvelope) { e.From = lowOrder[:] }), ErrSignalMalformed},
		{"box of no Signal", sealRaw(t, a, bPub, []byte{0xff, 0xff}, nil), ErrSignalMalformed},
		{"no body", fromA(valid(func(m *roampb.Signal) { m.Body = nil })), ErrSignalMalformed},
		{"no seq", fromA(valid(func(m *roampb.Signal) { m.Seq = 0 })), ErrSignalMalformed},
		{"no sent time", fromA(valid(func(m *roampb.Signal) { m.Sent = nil })), ErrSignalMalformed},
		{"invalid sent time", fromA(valid(func(m *roampb.Signal) { m.Sent.Nanos = -1 })), ErrSignalMalformed},
		{"ufrag of 3", fromA(valid(offer(func(o *roampb.IceOffer) { o.Ufrag = "abc" }))), ErrSignalMalformed},
		{"ufrag of 257", fromA(valid(offer(func(o *roampb.IceOffer) { o.Ufrag = strings.Repeat("u", 257) }))), ErrSignalMalformed},
		{"ufrag not ice-chars", fromA(valid(offer(func(o *roampb.IceOffer) { o.Ufrag = "ab d" }))), ErrSignalMalformed},
		{"pwd of 21", fromA(valid(offer(func(o *roampb.IceOffer) { o.Pwd = strings.Repeat("p", 21) }))), ErrSignalMalformed},
		{"65 candidates", fromA(valid(offer(func(o *roampb.IceOffer) { o.Candidates = make([]string, 65) }))), ErrSignalMalformed},
		{"empty candidate", fromA(valid(offer(func(o *roampb.IceOffer) { o.Candidates = []string{""} }))), ErrSignalMalformed},
		{"candidate of 513", fromA(valid(offer(func(o *roampb.IceOffer) { o.Candidates = []string{strings.Repeat("c", 513)} }))), ErrSignalMalformed},
		{"restart reason of 257", fromA(valid(func(m *roampb.Signal) {
			m.Body = &roampb.Signal_Restart{Restart: &roampb.IceRestart{Reason: strings.Repeat("r", 257)}}
		})), ErrSignalMalformed},
		{"member key of 31", fromA(valid(func(m *roampb.Signal) {
			m.Body = &roampb.Signal_Directory{Directory: &roampb.Directory{Members: []*roampb.Member{{Name: "x", PublicKey: make([]byte, 31)}}}}
		})), ErrSignalMalformed},
		{"member with 65 addresses", fromA(valid(func(m *roampb.Signal) {
			addrs := make([]string, 65)
			for i := range addrs {
				addrs[i] = "100.64.0.1/32"
			}
			m.Body = &roampb.Signal_Directory{Directory: &roampb.Directory{Members: []*roampb.Member{{PublicKey: make([]byte, 32), Addresses: addrs}}}}
		})), ErrSignalMalformed},
		{"sent 6 minutes ago", fromA(valid(func(m *roampb.Signal) { m.Sent = timestamppb.New(now.Add(-6 * time.Minute)) })), ErrSignalStale},
		{"sent 6 minutes ahead", fromA(valid(func(m *roampb.Signal) { m.Sent = timestamppb.New(now.Add(6 * time.Minute)) })), ErrSignalStale},
		{"valid", sealed, nil},
		{"valid again (replayed)", sealed, ErrSignalReplay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, m, err := sb.Open(tt.pkt)
			if tt.want == nil {
				if err != nil || from != a.PublicKey() || m == nil {
					t.Fatalf("Open = %s, %v, %v; want %s, the offer, nil", from, m, err, a.PublicKey())
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "tunnel: signal: ") {
				t.Errorf("error %q does not start with %q", err, "tunnel: signal: ")
			}
			if from != (wgtypes.Key{}) || m != nil {
				t.Errorf("Open returned from %s, %v with an error", from, m)
			}
		})
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealerStale(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration // sender's clock minus the recipient's
		want   error
	}{
		{"same clock", 0, nil},
		{"5 minutes behind", -MaxSignalSkew, nil},
		{"5 minutes ahead", MaxSignalSkew, nil},
		{"5 minutes and 1 s behind", -MaxSignalSkew - time.Second, ErrSignalStale},
		{"5 minutes and 1 s ahead", MaxSignalSkew + time.Second, ErrSignalStale},
		{"a year behind", -365 * 24 * time.Hour, ErrSignalStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newTestKey(t), newTestKey(t)
			nowA, nowB := signalEpoch.Add(tt.offset), signalEpoch
			sa, sb := newTestSealer(a, &nowA), newTestSealer(b, &nowB, a)
			pkt, err := sa.Seal(b.PublicKey(), testOffer())
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := sb.Open(pkt); !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSealerReplayWindow(t *testing.T) {
	const base = 1_000_000
	tests := []struct {
		name   string
		seqs   []uint64 // offsets from base, opened in this order
		accept []bool
	}{
		{"in order", []uint64{1, 2, 3, 4}, []bool{true, true, true, true}},
		{"duplicate", []uint64{1, 2, 2, 1}, []bool{true, true, false, false}},
		{"out of order within the window, once", []uint64{10, 5, 7, 5, 6, 7, 9}, []bool{true, true, true, false, true, false, true}},
		{"127 below the highest", []uint64{200, 73, 73}, []bool{true, true, false}},
		{"128 below the highest", []uint64{200, 72}, []bool{true, false}},
		{"jump of 64 keeps what it passed", []uint64{1, 2, 66, 2, 3, 1}, []bool{true, true, true, false, true, false}},
		{"jump of 65 across the word", []uint64{1, 66, 1, 2, 65}, []bool{true, true, false, true, true}},
		{"jump of 127", []uint64{1, 128, 1, 2}, []bool{true, true, false, true}},
		{"jump beyond the window forgets it", []uint64{1, 2, 500, 2, 400, 373, 372}, []bool{true, true, true, false, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := signalEpoch
			a, b := newTestKey(t), newTestKey(t)
			sb := newTestSealer(b, &now, a)
			for i, off := range tt.seqs {
				m := testOffer()
				m.Seq, m.Sent = base+off, timestamppb.New(now)
				_, _, err := sb.Open(sealSignal(t, a, b.PublicKey(), m))
				if got := err == nil; got != tt.accept[i] {
					t.Errorf("seq base+%d (#%d): accepted %v, want %v (err %v)", off, i, got, tt.accept[i], err)
				} else if err != nil && !errors.Is(err, ErrSignalReplay) {
					t.Errorf("seq base+%d (#%d): error %v, want %v", off, i, err, ErrSignalReplay)
				}
			}
		})
	}
}

// TestReplayWindowReference checks signalReplayWindow against a slow,
// obviously correct reference: every seq accepted so far, and the highest.
func TestReplayWindowReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := range 200 {
		var w signalReplayWindow
		seen := map[uint64]bool{}
		var top uint64
		for i := range 300 {
			var seq uint64
			switch r.IntN(4) {
			case 0: // ahead, sometimes far
				seq = top + 1 + uint64(r.IntN(1+r.IntN(300)))
			default: // around the window's edge
				seq = max(1, top-min(top, uint64(r.IntN(140)))+uint64(r.IntN(3)))
			}
			want := seq > 0 && !seen[seq] && seq+signalReplayWindowSize > top
			if got := w.fresh(seq); got != want {
				t.Fatalf("run %d step %d: fresh(%d) with top %d = %v, want %v", run, i, seq, top, got, want)
			}
			if want {
				w.accept(seq)
				seen[seq] = true
				top = max(top, seq)
			}
		}
	}
}

// TestSealerWindowMovesOnlyForValid: a Signal rejected for any reason after
// the box opened (here: stale) must not move the sender's window.
func TestSealerWindowMovesOnlyForValid(t *testing.T) {
	now := signalEpoch
	a, b := newTestKey(t), newTestKey(t)
	sb := newTestSealer(b, &now, a)
	open := func(seq uint64, sent time.Time) error {
		m := testOffer()
		m.Seq, m.Sent = seq, timestamppb.New(sent)
		_, _, err := sb.Open(sealSignal(t, a, b.PublicKey(), m))
		return err
	}
	if err := open(100_000, now.Add(-time.Hour)); !errors.Is(err, ErrSignalStale) {
		t.Fatalf("stale seq 100000: %v, want %v", err, ErrSignalStale)
	}
	if err := open(100, now); err != nil {
		t.Fatalf("seq 100 after a stale seq 100000: %v, want accepted", err)
	}
	if err := open(100_000, now); err != nil {
		t.Fatalf("seq 100000, now fresh: %v, want accepted", err)
	}
}

func TestSealerBounds(t *testing.T) {
	now := signalEpoch
	b := newTestKey(t)
	senders := make([]wgtypes.Key, 10)
	for i := range senders {
		senders[i] = newTestKey(t)
	}
	sb := newTestSealer(b, &now, senders...)
	sb.shared, sb.windows = newSignalLRU[*[32]byte](4), newSignalLRU[*signalReplayWindow](4)
	pkts := make([][]byte, len(senders))
	for i, a := range senders {
		pkts[i] = sealSignal(t, a, b.PublicKey(), &roampb.Signal{Seq: 7, Sent: timestamppb.New(now), Body: &roampb.Signal_Ping{Ping: &roampb.Ping{}}})
		if _, _, err := sb.Open(pkts[i]); err != nil {
			t.Fatalf("sender %d: %v", i, err)
		}
		if n, m := sb.shared.len(), sb.windows.len(); n > 4 || m > 4 {
			t.Fatalf("after %d senders: %d box keys and %d windows, want at most 4", i+1, n, m)
		}
	}
	// The last four senders are remembered; the first was evicted, so its
	// Signal is accepted again (as after a restart).
	for i := 6; i < 10; i++ {
		if _, _, err := sb.Open(pkts[i]); !errors.Is(err, ErrSignalReplay) {
			t.Errorf("sender %d replayed: %v, want %v", i, err, ErrSignalReplay)
		}
	}
	if _, _, err := sb.Open(pkts[0]); err != nil {
		t.Errorf("evicted sender 0 replayed: %v, want accepted", err)
	}
	// Sealing to many peers keeps at most 4 box keys too.
	for _, a := range senders {
		if _, err := sb.Seal(a.PublicKey(), testOffer()); err != nil {
			t.Fatal(err)
		}
	}
	if n := sb.shared.len(); n != 4 {
		t.Errorf("after sealing to 10 peers: %d box keys, want 4", n)
	}
}

func TestSealerSeq(t *testing.T) {
	now := signalEpoch
	a, b := newTestKey(t), newTestKey(t)
	sa := newTestSealer(a, &now)
	var last uint64
	for i := range 5 {
		m := testOffer()
		if _, err := sa.Seal(b.PublicKey(), m); err != nil {
			t.Fatal(err)
		}
		if m.Seq <= last || m.Seq != uint64(now.Unix())<<32+uint64(i)+1 {
			t.Fatalf("seal %d at a still clock: seq %d after %d", i, m.Seq, last)
		}
		last = m.Seq
	}
	// A restarted node (a new Sealer, the clock a second on) goes on above.
	now = now.Add(time.Second)
	m := testOffer()
	if _, err := newTestSealer(a, &now).Seal(b.PublicKey(), m); err != nil {
		t.Fatal(err)
	}
	if m.Seq <= last {
		t.Errorf("after a restart: seq %d, want more than %d", m.Seq, last)
	}
}

func TestSealRefuses(t *testing.T) {
	now := signalEpoch
	a, b := newTestKey(t), newTestKey(t)
	sa := newTestSealer(a, &now)
	big := testOffer()
	for range 40 {
		big.GetOffer().Candidates = append(big.GetOffer().Candidates, strings.Repeat("c", 100))
	}
	tests := []struct {
		name string
		to   wgtypes.Key
		m    *roampb.Signal
		want error
	}{
		{"nil", b.PublicKey(), nil, ErrSignalMalformed},
		{"no body", b.PublicKey(), &roampb.Signal{}, ErrSignalMalformed},
		{"short pwd", b.PublicKey(), &roampb.Signal{Body: &roampb.Signal_Answer{Answer: &roampb.IceAnswer{Ufrag: "abcd", Pwd: "x"}}}, ErrSignalMalformed},
		{"invalid UTF-8", b.PublicKey(), &roampb.Signal{Body: &roampb.Signal_Restart{Restart: &roampb.IceRestart{Reason: "\xff"}}}, ErrSignalMalformed},
		{"over 4096 bytes", b.PublicKey(), big, ErrSignalTooLarge},
		{"low-order recipient", wgtypes.Key{}, testOffer(), ErrSignalMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sa.Seal(tt.to, tt.m); !errors.Is(err, tt.want) {
				t.Fatalf("Seal error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestHubCannotOpen: a hub relays envelopes it cannot open, even when it
// rewrites the recipient to itself.
func TestHubCannotOpen(t *testing.T) {
	now := signalEpoch
	a, b, h := newTestKey(t), newTestKey(t), newTestKey(t)
	pkt, err := newTestSealer(a, &now).Seal(b.PublicKey(), testOffer())
	if err != nil {
		t.Fatal(err)
	}
	sh := newTestSealer(h, &now, a, b)
	if _, _, err := sh.Open(pkt); !errors.Is(err, ErrSignalNotForUs) {
		t.Errorf("hub opens a's signal to b: %v, want %v", err, ErrSignalNotForUs)
	}
	env := new(roampb.SignalEnvelope)
	if err := proto.Unmarshal(pkt, env); err != nil {
		t.Fatal(err)
	}
	hPub := h.PublicKey()
	env.To = hPub[:]
	if _, _, err := sh.Open(mustMarshal(t, env)); !errors.Is(err, ErrSignalForged) {
		t.Errorf("hub opens a's signal to b readdressed to itself: %v, want %v", err, ErrSignalForged)
	}
}

// BenchmarkSealOpen seals an offer with two candidates and opens it, with
// both ends' box keys precomputed.
func BenchmarkSealOpen(b *testing.B) {
	a, c := newTestKey(b), newTestKey(b)
	sa, sc := NewSealer(a, nil), NewSealer(c, knownKeys(a))
	to := c.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		pkt, err := sa.Seal(to, testOffer())
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := sc.Open(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSealerReorder: signals sealed one after the other are consecutive
// seqs, so the recipient takes them in any order (a later one overtaking
// an earlier one through another hub), each once.
func TestSealerReorder(t *testing.T) {
	now := signalEpoch
	a, b := newTestKey(t), newTestKey(t)
	sa, sb := newTestSealer(a, &now), newTestSealer(b, &now, a)
	var pkts [][]byte
	for range 20 {
		pkt, err := sa.Seal(b.PublicKey(), testOffer())
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, pkt)
		now = now.Add(time.Millisecond)
	}
	for i := len(pkts) - 1; i >= 0; i-- {
		if _, _, err := sb.Open(pkts[i]); err != nil {
			t.Fatalf("signal %d, opened after the %d sealed later: %v", i, len(pkts)-1-i, err)
		}
	}
	if _, _, err := sb.Open(pkts[3]); !errors.Is(err, ErrSignalReplay) {
		t.Errorf("signal 3 again: %v, want a replay", err)
	}
}
