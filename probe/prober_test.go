package probe

import (
	"context"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var (
	peerB = netip.MustParseAddrPort("100.64.0.2:862")
	peerC = netip.MustParseAddrPort("100.64.0.3:862")
)

// proberRun is a Prober over a memNet, run in a synctest bubble, with the
// OnChange calls recorded.
type proberRun struct {
	t      *testing.T
	net    *memNet
	p      *Prober
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	changes []Link
	at      []time.Time
}

func startProber(t *testing.T, targets ...Target) *proberRun {
	t.Helper()
	r := &proberRun{t: t, net: newMemNet(7), done: make(chan error, 1)}
	for _, tg := range targets {
		r.net.path(tg.Addr)
	}
	p, err := NewProber(ProberConfig{Conn: r.net, Seed: 11, OnChange: func(l Link) {
		r.mu.Lock()
		r.changes = append(r.changes, l)
		r.at = append(r.at, time.Now())
		r.mu.Unlock()
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetTargets(targets); err != nil {
		t.Fatal(err)
	}
	r.p = p
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *proberRun) stop() {
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	r.done <- nil // a second stop returns at once
}

// link waits for the bubble to settle and returns the target's Link.
func (r *proberRun) link(addr netip.AddrPort) Link {
	r.t.Helper()
	synctest.Wait()
	for _, l := range r.p.Links() {
		if l.Target.Addr == addr {
			return l
		}
	}
	r.t.Fatalf("no link to %s in %v", addr, r.p.Links())
	return Link{}
}

// stateChanges returns the times of the changes to state, after from.
func (r *proberRun) stateChanges(addr netip.AddrPort, state State, from time.Time) []time.Time {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	prev := map[netip.AddrPort]State{}
	for i, l := range r.changes {
		was, seen := prev[l.Target.Addr]
		prev[l.Target.Addr] = l.State
		if l.Target.Addr != addr || l.State != state || (seen && was == state) || r.at[i].Before(from) {
			continue
		}
		out = append(out, r.at[i])
	}
	return out
}

func fast(name string, addr netip.AddrPort) Target {
	return Target{Name: name, Addr: addr, Profile: "fast", Config: Config{Interval: Profiles["fast"]}}
}

// A clean 10 ms link comes up within a second with the right figures; a cut
// is declared down in well under a second; after the repair the link is up
// again only after the hold-down.
func TestProberUpCutRepair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := startProber(t, fast("b", peerB))
		time.Sleep(5 * time.Second)
		l := r.link(peerB)
		if l.State != Up || l.Since.Sub(start) > time.Second {
			t.Fatalf("after 5 s: %s since %v, want up within 1 s", l.State, l.Since.Sub(start))
		}
		if l.RTT.SRTT != 10*time.Millisecond || l.Loss != 0 || l.Cost != PerfectCost || l.Jitter != 0 {
			t.Errorf("clean 10 ms link: rtt %v loss %v cost %d jitter %v, want 10ms 0 %d 0", l.RTT.SRTT, l.Loss, l.Cost, l.Jitter, PerfectCost)
		}
		if l.Sent < 45 || l.Replies+1 < l.Sent {
			t.Errorf("sent %d replies %d in 5 s at 100 ms, want about 50, all answered", l.Sent, l.Replies)
		}

		cut := time.Now()
		r.net.set(peerB, func(p *memPath) { p.cut = true })
		time.Sleep(3 * time.Second)
		downs := r.stateChanges(peerB, Down, cut)
		if len(downs) != 1 || downs[0].Sub(cut) > time.Second {
			t.Fatalf("downs after the cut at %v: %v, want one within 1 s", cut, downs)
		}
		l = r.link(peerB)
		if l.Cost != InfiniteCost || l.Flaps != 1 || l.Transitions != 2 {
			t.Errorf("down link: cost %d flaps %d transitions %d, want %d 1 2", l.Cost, l.Flaps, l.Transitions, InfiniteCost)
		}
		t.Logf("cut detected after %v (down after %d misses)", downs[0].Sub(cut), l.DownAfter)

		repair := time.Now()
		r.net.set(peerB, func(p *memPath) { p.cut = false })
		time.Sleep(5 * time.Second)
		ups := r.stateChanges(peerB, Up, repair)
		if len(ups) != 1 {
			t.Fatalf("ups after the repair: %v, want one", ups)
		}
		if d := ups[0].Sub(repair); d < l.HoldDown || d > l.HoldDown+time.Second {
			t.Errorf("up %v after the repair, want the hold-down %v plus under 1 s", d, l.HoldDown)
		}
		if l := r.link(peerB); l.Cost != PerfectCost || l.Loss != 0 {
			t.Errorf("after the repair: cost %d loss %v, want %d 0 (an outage is not loss)", l.Cost, l.Loss, PerfectCost)
		}
	})
}

// Random loss on the way out only: round-trip and forward loss near it,
// backward near zero, and no down.
func TestProberLossDirections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startProber(t, fast("b", peerB))
		r.net.set(peerB, func(p *memPath) { p.lossFwd = 0.10 })
		time.Sleep(2 * time.Minute)
		l := r.link(peerB)
		if l.State != Up || l.Flaps != 0 {
			t.Fatalf("10%% loss: %s with %d flaps, want up, none", l.State, l.Flaps)
		}
		if math.Abs(l.Loss-0.10) > 0.03 {
			t.Errorf("loss %.3f, want 0.10 +- 0.03", l.Loss)
		}
		if !l.Directions || math.Abs(l.Forward-0.10) > 0.07 || l.Backward > 0.03 {
			t.Errorf("directions %v: forward %.3f backward %.3f, want about 0.10 and 0", l.Directions, l.Forward, l.Backward)
		}
		if l.Cost <= PerfectCost || l.Cost > 320 {
			t.Errorf("cost %d at 10%% loss, want above %d and at most 320", l.Cost, PerfectCost)
		}
	})
}

// A stateless reflector echoes our sequence numbers: no directions are
// claimed, the round-trip loss is still measured.
func TestProberStatelessReflector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startProber(t, fast("b", peerB))
		r.net.set(peerB, func(p *memPath) { p.stateless, p.lossFwd = true, 0.2 })
		time.Sleep(time.Minute)
		l := r.link(peerB)
		if l.Directions || math.Abs(l.Loss-0.2) > 0.05 {
			t.Errorf("stateless reflector: directions %v loss %.3f, want none and 0.2", l.Directions, l.Loss)
		}
	})
}

// 20 % random loss each way (36 % round trip) for 10 minutes: never down.
func TestProberNoFalseDownAt20Percent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startProber(t, fast("b", peerB))
		r.net.set(peerB, func(p *memPath) { p.lossFwd, p.lossBack, p.jitter = 0.2, 0.2, 2*time.Millisecond })
		time.Sleep(10 * time.Minute)
		l := r.link(peerB)
		if l.State != Up || l.Flaps != 0 {
			t.Fatalf("after 10 min at 20%% loss each way: %s with %d flaps, want up, none", l.State, l.Flaps)
		}
		t.Logf("loss %.3f (forward %.3f backward %.3f), down after %d misses, cost %d", l.Loss, l.Forward, l.Backward, l.DownAfter, l.Cost)
	})
}

// An RTT that grows from 10 to 200 ms raises the cost at once and does not
// take the link down; going back to 10 ms lowers it only after it held.
func TestProberDegradeAndImprove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startProber(t, fast("b", peerB))
		time.Sleep(3 * time.Second)
		r.net.set(peerB, func(p *memPath) { p.oneWay = 100 * time.Millisecond })
		time.Sleep(2 * time.Second)
		l := r.link(peerB)
		if l.State != Up || l.Cost != PerfectCost+DefaultCostParams.MaxRTTPenalty {
			t.Fatalf("2 s at 200 ms RTT: %s cost %d (rtt %v), want up, %d", l.State, l.Cost, l.RTT.SRTT, PerfectCost+DefaultCostParams.MaxRTTPenalty)
		}
		synctest.Wait()
		r.mu.Lock()
		last := r.changes[len(r.changes)-1]
		r.mu.Unlock()
		if last.Cost != l.Cost || last.State != Up {
			t.Errorf("OnChange last told %s cost %d, want up and the new cost %d", last.State, last.Cost, l.Cost)
		}
		r.net.set(peerB, func(p *memPath) { p.oneWay = 5 * time.Millisecond })
		time.Sleep(time.Second)
		if l := r.link(peerB); l.Cost != PerfectCost+DefaultCostParams.MaxRTTPenalty || l.Instant >= l.Cost {
			t.Errorf("1 s after the RTT improved: cost %d instant %d, want %d held for %v while the instant cost falls",
				l.Cost, l.Instant, PerfectCost+DefaultCostParams.MaxRTTPenalty, costHold)
		}
		// SRTT follows with gain 1/8: the last of the RTT penalty goes after
		// about 150 samples.
		time.Sleep(20 * time.Second)
		if l := r.link(peerB); l.Cost != PerfectCost || l.Flaps != 0 {
			t.Errorf("21 s after the improvement: cost %d flaps %d (rtt %v), want %d 0", l.Cost, l.Flaps, l.RTT.SRTT, PerfectCost)
		}
	})
}

// Malformed datagrams, datagrams from no target and replies of another
// session are counted and dropped; the link stays up.
func TestProberDropsForeign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startProber(t, fast("b", peerB))
		time.Sleep(time.Second)
		r.net.inject([]byte("short"), peerB)
		other, _ := ReflectorPacket{SSID: 0, SenderSeq: 3}.MarshalBinary()
		r.net.inject(other, peerB)
		r.net.inject(other, peerC)
		time.Sleep(time.Second)
		st := r.p.Stats()
		if st.Malformed != 1 || st.Foreign != 2 {
			t.Errorf("stats %+v, want 1 malformed, 2 foreign", st)
		}
		if l := r.link(peerB); l.State != Up {
			t.Errorf("link %s after junk, want up", l.State)
		}
	})
}

// SetTargets while running: a new target starts, a removed one stops, and
// invalid lists are refused whole with the culprit named.
func TestProberSetTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startProber(t, fast("b", peerB))
		time.Sleep(time.Second)
		r.net.path(peerC)
		if err := r.p.SetTargets([]Target{fast("c", peerC)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		ls := r.p.Links()
		if len(ls) != 1 || ls[0].Target.Name != "c" || ls[0].State != Up {
			t.Fatalf("links %+v, want c alone, up", ls)
		}
		for _, tc := range []struct {
			name string
			ts   []Target
			want string
		}{
			{"no name", []Target{{Addr: peerB, Config: Config{Interval: time.Second}}}, "Name is empty"},
			{"no port", []Target{{Name: "x", Addr: netip.AddrPortFrom(peerB.Addr(), 0), Config: Config{Interval: time.Second}}}, "not an address and port"},
			{"twice", []Target{fast("x", peerB), fast("y", peerB)}, "same Addr"},
			{"no interval", []Target{{Name: "x", Addr: peerB}}, "Interval"},
		} {
			err := r.p.SetTargets(tc.ts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
			}
		}
		if ls := r.p.Links(); len(ls) != 1 || ls[0].Target.Name != "c" {
			t.Errorf("after refused lists: %+v, want c alone", ls)
		}
	})
}

func TestProfileInterval(t *testing.T) {
	for _, tc := range []struct {
		name string
		want time.Duration
		err  string
	}{
		{"", 250 * time.Millisecond, ""},
		{"fast", 100 * time.Millisecond, ""},
		{"metered", 2 * time.Second, ""},
		{"slow", 0, `profile "slow": want one of default, fast, metered`},
	} {
		got, err := ProfileInterval(tc.name)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ProfileInterval(%q) = %v, %v; want %v, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// Probes answered seconds late while the tunnel waited for its handshake do
// not make a new link look slow: it comes up with the round trip of the
// path, so its cost is perfect from the start.
func TestProberFirstRepliesLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startProber(t, fast("b", peerB))
		r.net.set(peerB, func(p *memPath) { p.holdUntil = time.Now().Add(3 * time.Second) })
		time.Sleep(5 * time.Second)
		synctest.Wait()
		r.mu.Lock()
		changes := slices.Clone(r.changes)
		r.mu.Unlock()
		for _, c := range changes {
			if c.State != Up || c.Cost != PerfectCost {
				t.Errorf("change: %s cost %d (rtt %v, loss %.2f), want up, cost %d from the start", c.State, c.Cost, c.RTT.SRTT, c.Loss, PerfectCost)
			}
		}
		if l := r.link(peerB); l.State != Up || l.RTT.SRTT != 10*time.Millisecond || l.Loss != 0 {
			t.Errorf("2 s after the handshake: %s rtt %v loss %v, want up, 10ms, 0", l.State, l.RTT.SRTT, l.Loss)
		}
	})
}
