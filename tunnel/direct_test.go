package tunnel

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roamnet/roam/api/roampb"
	"google.golang.org/protobuf/proto"
)

// directPair is two Directs over the vnet lab, their signals passed in
// memory (drop decides, per message, whether it is lost).
type directPair struct {
	a, b     *Direct
	pathsA   chan PathStatus
	pathsB   chan PathStatus
	sentA    atomic.Int64 // signals a sent
	sentB    atomic.Int64
	drop     func(from string, m *roampb.Signal) bool
	mu       sync.Mutex
	received map[string][]string // kinds of signals each end got
}

func bodyKind(m *roampb.Signal) string {
	switch m.GetBody().(type) {
	case *roampb.Signal_Offer:
		return "offer"
	case *roampb.Signal_Answer:
		return "answer"
	case *roampb.Signal_Candidates:
		return "candidates"
	case *roampb.Signal_Restart:
		return "restart"
	}
	return "other"
}

func newDirectPair(t *testing.T, lab *vnetLab, drop func(from string, m *roampb.Signal) bool) *directPair {
	t.Helper()
	p := &directPair{
		pathsA: make(chan PathStatus, 64), pathsB: make(chan PathStatus, 64),
		drop: drop, received: map[string][]string{},
	}
	na, nb := lab.node(t, lab.a, vnetLocalA), lab.node(t, lab.b, vnetLocalB)
	var a, b *Direct
	deliver := func(from string, to **Direct, count *atomic.Int64) func(*roampb.Signal) error {
		return func(m *roampb.Signal) error {
			count.Add(1)
			if p.drop != nil && p.drop(from, m) {
				return nil
			}
			c := proto.Clone(m).(*roampb.Signal)
			p.mu.Lock()
			p.received[from] = append(p.received[from], bodyKind(c))
			p.mu.Unlock()
			(*to).Handle(c)
			return nil
		}
	}
	var err error
	a, err = NewDirect(DirectConfig{ICE: na.ice, Controlling: true, Send: deliver("a", &b, &p.sentA), OnPath: func(s PathStatus) { p.pathsA <- s }})
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewDirect(DirectConfig{ICE: nb.ice, Controlling: false, Send: deliver("b", &a, &p.sentB), OnPath: func(s PathStatus) { p.pathsB <- s }})
	if err != nil {
		t.Fatal(err)
	}
	p.a, p.b = a, b
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range []*Direct{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = d.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

// waitState waits for a path state on ch and returns it.
func waitState(t *testing.T, name string, ch chan PathStatus, state string, within time.Duration) PathStatus {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case s := <-ch:
			if s.State == state {
				return s
			}
		case <-deadline:
			t.Fatalf("%s: no %s path within %v", name, state, within)
		}
	}
}

// TestDirectConnects: the two ends of a direct path negotiate through
// their signals (offer, answer, candidates) and both end connected on the
// pair of the public mappings.
func TestDirectConnects(t *testing.T) {
	lab := newVNetLab(t, natEndpointIndependent, natEndpointIndependent)
	start := time.Now()
	p := newDirectPair(t, lab, nil)
	sa := waitState(t, "a", p.pathsA, PathConnected, 10*time.Second)
	sb := waitState(t, "b", p.pathsB, PathConnected, 10*time.Second)
	t.Logf("connected after %v: a %s, b %s", time.Since(start).Round(time.Millisecond), sa.Pair, sb.Pair)
	if sa.Pair.Remote.Addr().String() != vnetPublicB || sb.Pair.Remote.Addr().String() != vnetPublicA {
		t.Errorf("pairs a %s, b %s: want the remotes on the public addresses", sa.Pair, sb.Pair)
	}
	if s := p.a.Status(); s.State != PathConnected || s.Sessions != 1 {
		t.Errorf("a's status %+v: want connected after 1 session", s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if got := p.received["a"]; len(got) == 0 || got[0] != "offer" {
		t.Errorf("a sent %v: want an offer first", got)
	}
	if got := p.received["b"]; len(got) == 0 || got[0] != "restart" && got[0] != "answer" {
		t.Errorf("b sent %v: want its start request or an answer first", got)
	}
}

// TestDirectOfferLost: the first offer is lost on the way; the
// retransmission gets the path up.
func TestDirectOfferLost(t *testing.T) {
	lab := newVNetLab(t, natEndpointIndependent, natEndpointIndependent)
	var offers atomic.Int32
	p := newDirectPair(t, lab, func(from string, m *roampb.Signal) bool {
		return from == "a" && bodyKind(m) == "offer" && offers.Add(1) == 1
	})
	waitState(t, "a", p.pathsA, PathConnected, 10*time.Second)
	waitState(t, "b", p.pathsB, PathConnected, 10*time.Second)
	if offers.Load() < 2 {
		t.Errorf("%d offers sent: want a retransmission", offers.Load())
	}
}

// TestDirectRestart: a restart from either end makes a new session; the
// path stays connected meanwhile (make-before-break) and a pair of the
// new session is selected.
func TestDirectRestart(t *testing.T) {
	lab := newVNetLab(t, natEndpointIndependent, natEndpointIndependent)
	p := newDirectPair(t, lab, nil)
	waitState(t, "a", p.pathsA, PathConnected, 10*time.Second)
	waitState(t, "b", p.pathsB, PathConnected, 10*time.Second)
	for i, d := range []*Direct{p.a, p.b} {
		before := p.a.Status().Sessions
		time.Sleep(restartHold)
		start := time.Now()
		d.Restart("underlay changed")
		deadline := time.Now().Add(10 * time.Second)
		for st := p.a.Status(); st.Sessions == before || st.State != PathConnected || st.Since.Before(start); st = p.a.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("restart %d: a is %+v after 10 s, want a new connected session", i, p.a.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("restart from %s: new session %d connected in %v", []string{"a", "b"}[i], p.a.Status().Sessions, time.Since(start).Round(time.Millisecond))
	}
	for name, ch := range map[string]chan PathStatus{"a": p.pathsA, "b": p.pathsB} {
		for len(ch) > 0 {
			if s := <-ch; !s.Pair.Remote.IsValid() || s.State != PathConnected && s.State != PathChecking {
				t.Errorf("%s went %s with pair %s during a restart: the old pair must stay in use", name, s.State, s.Pair)
			}
		}
	}
}

// TestDirectSymmetricFails: behind symmetric NATs both ends report the
// path failed with the reason and schedule a retry, with backoff.
func TestDirectSymmetricFails(t *testing.T) {
	lab := newVNetLab(t, natSymmetric, natSymmetric)
	p := newDirectPair(t, lab, nil)
	sa := waitState(t, "a", p.pathsA, PathFailed, 20*time.Second)
	waitState(t, "b", p.pathsB, PathFailed, 20*time.Second)
	if sa.LastError == "" || sa.Retry.IsZero() {
		t.Errorf("a failed with %+v: want a reason and a retry time", sa)
	}
	if d := time.Until(sa.Retry); d > 2*retryMin {
		t.Errorf("first retry in %v: want about %v", d, retryMin)
	}
	select {
	case s := <-p.pathsA:
		if s.State == PathConnected {
			t.Errorf("a connected behind symmetric NATs: %s", s.Pair)
		}
	default:
	}
}

// TestDirectRestartRequestLost: the controlled end's restart request is
// lost on the way; it asks again until the controlling end starts a new
// session.
func TestDirectRestartRequestLost(t *testing.T) {
	lab := newVNetLab(t, natEndpointIndependent, natEndpointIndependent)
	var dropNext atomic.Bool
	p := newDirectPair(t, lab, func(from string, m *roampb.Signal) bool {
		return from == "b" && bodyKind(m) == "restart" && dropNext.CompareAndSwap(true, false)
	})
	waitState(t, "a", p.pathsA, PathConnected, 10*time.Second)
	before := p.a.Status().Sessions
	time.Sleep(restartHold)
	dropNext.Store(true)
	start := time.Now()
	p.b.Restart("underlay changed")
	deadline := time.Now().Add(5 * time.Second)
	for st := p.a.Status(); st.Sessions == before || st.State != PathConnected || st.Since.Before(start); st = p.a.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("a is %+v 5 s after b's lost restart request: want a new connected session", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if dropNext.Load() {
		t.Fatal("no restart request was sent")
	}
	t.Logf("new session after the lost request: %v", time.Since(start).Round(time.Millisecond))
}

// TestDirectLowerGeneration: a controlled end that answered a generation
// higher than its peer's clock now gives (the peer restarted with its clock
// stepped back) takes the peer's offers again once its own session failed.
func TestDirectLowerGeneration(t *testing.T) {
	lab := newVNetLab(t, natEndpointIndependent, natEndpointIndependent)
	p := newDirectPair(t, lab, nil)
	waitState(t, "a", p.pathsA, PathConnected, 10*time.Second)
	// An offer from "the future": b answers it, and its session fails
	// (nobody behind it), as does a's (b closed its old agent).
	p.b.Handle(&roampb.Signal{Session: math.MaxUint64 - 1, Body: &roampb.Signal_Offer{Offer: &roampb.IceOffer{
		Ufrag: "futureufrag", Pwd: "futurepasswordfuturepassword"}}})
	waitState(t, "b", p.pathsB, PathFailed, 20*time.Second)
	waitState(t, "b", p.pathsB, PathConnected, 30*time.Second)
	waitState(t, "a", p.pathsA, PathConnected, 10*time.Second)
}
