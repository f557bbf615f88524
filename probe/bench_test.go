package probe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// asTest runs f as a test named name from a benchmark: synctest.Test needs a
// *testing.T, which a benchmark does not have, and testing.RunTests makes
// one. Its matcher accepts every name, so the -run '^$' that keeps the tests
// out of a benchmark run does not filter f out; f runs once even under
// -count. A failure in f fails b.
func asTest(b *testing.B, name string, f func(t *testing.T)) {
	b.Helper()
	var once sync.Once
	all := func(string, string) (bool, error) { return true, nil }
	ok := testing.RunTests(all, []testing.InternalTest{{Name: name, F: func(t *testing.T) {
		once.Do(func() { f(t) })
	}}})
	if !ok {
		b.Fatalf("%s failed (its log is above)", name)
	}
}

// stateChange is one change of a watched link's state, as OnChange saw it.
type stateChange struct {
	state     State
	at        time.Time
	downAfter int // the misses in a row that declared it down
}

// watched is a Prober over a memNet probing one target, in a synctest
// bubble; each change of the target's state arrives on changes.
type watched struct {
	net     *memNet
	p       *Prober
	target  Target
	changes chan stateChange
}

// startWatched starts a Prober probing tg over a fresh memNet whose path to
// tg is set up by path; it stops when t's test ends.
func startWatched(t *testing.T, seed uint64, tg Target, path func(p *memPath)) *watched {
	t.Helper()
	w := &watched{net: newMemNet(seed), target: tg, changes: make(chan stateChange, 64)}
	w.net.set(tg.Addr, path)
	last := Down // OnChange is called one at a time for the one target
	p, err := NewProber(ProberConfig{Conn: w.net, Seed: seed, OnChange: func(l Link) {
		if l.State == last {
			return
		}
		last = l.State
		select {
		case w.changes <- stateChange{l.State, time.Now(), l.DownAfter}:
		default:
			t.Errorf("%s: state change to %s dropped: the benchmark fell behind", tg.Name, l.State)
		}
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetTargets([]Target{tg}); err != nil {
		t.Fatal(err)
	}
	w.p = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// next returns the next state change within d, or false.
func (w *watched) next(d time.Duration) (stateChange, bool) {
	if d <= 0 {
		return stateChange{}, false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case c := <-w.changes:
		return c, true
	case <-timer.C:
		return stateChange{}, false
	}
}

// link returns the target's Link now.
func (w *watched) link() Link {
	for _, l := range w.p.Links() {
		if l.Target.Addr == w.target.Addr {
			return l
		}
	}
	return Link{}
}

// percentile returns the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
}

// detection is the outcome of one cell of BenchmarkDetection.
type detection struct {
	profile    string
	loss       float64         // background loss on the forward path
	times      []time.Duration // cut to down, sorted
	ups        []time.Duration // repair to up, sorted
	downAfter  []int           // the K of each detection, sorted
	estimate   float64         // mean round-trip loss estimate just before the cuts
	falseDowns int             // downs while not cut
	probes     uint64          // probes sent
}

// detect times the detection of cuts on one link of profile at the
// background loss: it lets the link come up and run for settle probes,
// then cuts it cuts times, each time recording the time from the cut to the
// down, repairing, waiting for the link to be up again (the hold-down) and
// letting it run for the flap window and 10-20 intervals more (a random,
// continuous time, so the cut falls at any phase of the probe schedule).
// Spaced so, every cut is a first outage with the base hold-down; closer
// cuts would double it up to MaxHoldDown. Downs while the link is not cut
// are false downs.
func detect(t *testing.T, seed uint64, profile string, loss float64, settle, cuts int) detection {
	iv := Profiles[profile]
	tg := Target{Name: "b", Addr: peerB, Profile: profile, Config: Config{Interval: iv}}
	cfg, err := tg.Config.validate()
	if err != nil {
		t.Fatal(err)
	}
	w := startWatched(t, seed, tg, func(p *memPath) { p.lossFwd = loss })
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	d := detection{profile: profile, loss: loss}
	up := false
	// hold lets dur pass with the link not cut.
	hold := func(dur time.Duration) {
		end := time.Now().Add(dur)
		for {
			c, ok := w.next(time.Until(end))
			if !ok {
				return
			}
			up = c.state == Up
			if !up {
				d.falseDowns++
			}
		}
	}
	// waitUp waits, not cut, until the link is up.
	upLimit := 2000 * iv
	waitUp := func(what string) {
		for !up {
			c, ok := w.next(upLimit)
			if !ok {
				t.Fatalf("%s at %.0f %% loss: not up within %v %s", profile, 100*loss, upLimit, what)
			}
			up = c.state == Up
			if !up {
				d.falseDowns++
			}
		}
	}
	waitUp("at the start")
	hold(time.Duration(settle) * iv)
	var estimate float64
	for i := range cuts {
		waitUp("after a false down")
		estimate += w.link().Loss
		w.net.set(tg.Addr, func(p *memPath) { p.cut = true })
		cut := time.Now()
		limit := time.Duration(MaxWindow+10) * iv
		c, ok := w.next(limit)
		if !ok || c.state != Down {
			t.Fatalf("%s at %.0f %% loss, cut %d: no down within %v (got %v)", profile, 100*loss, i, limit, c.state)
		}
		up = false
		d.times = append(d.times, c.at.Sub(cut))
		d.downAfter = append(d.downAfter, c.downAfter)
		w.net.set(tg.Addr, func(p *memPath) { p.cut = false })
		repair := time.Now()
		waitUp(fmt.Sprintf("after repairing cut %d", i))
		d.ups = append(d.ups, time.Since(repair))
		hold(cfg.FlapWindow + 10*iv + time.Duration(rng.Int64N(int64(10*iv))))
	}
	d.estimate = estimate / float64(cuts)
	d.probes = w.link().Sent
	slices.Sort(d.times)
	slices.Sort(d.ups)
	slices.Sort(d.downAfter)
	return d
}

// BenchmarkDetection measures how long the real Prober takes to declare a
// cut link down, over the in-memory network on synctest's simulated clock,
// for each profile at 0, 5, 10 and 20 % random loss on the way out (5 ms
// each way, no jitter): 500 probes to settle the loss estimate, then 200
// cuts at random phases, each repaired once detected and followed by the
// hold-down. It reports the p50, p95 and maximum time from cut to down per
// cell and fails if the link ever went down while not cut.
// Run with: go test -run '^$' -bench Detection -benchtime 1x -v ./probe/
func BenchmarkDetection(b *testing.B) {
	const settle, cuts = 500, 200
	profiles := []string{"fast", "default", "metered"}
	losses := []float64{0, 0.05, 0.10, 0.20}
	for range b.N {
		var cells []detection
		asTest(b, "BenchmarkDetection_bubbles", func(t *testing.T) {
			for i, prof := range profiles {
				for j, loss := range losses {
					t.Run(fmt.Sprintf("%s_loss%.0f", prof, 100*loss), func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) {
							cells = append(cells, detect(t, uint64(1+i*len(losses)+j), prof, loss, settle, cuts))
						})
					})
				}
			}
		})
		var tab strings.Builder
		tab.WriteString("\n| profile | loss (forward) | loss estimate | down after (misses) | p50 | p95 | max | false downs | up after repair p50 / max |\n")
		tab.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		falseDowns, probes := 0, uint64(0)
		for _, c := range cells {
			key := fmt.Sprintf("%s_loss%.0f", c.profile, 100*c.loss)
			p50, p95, top := percentile(c.times, 0.5), percentile(c.times, 0.95), c.times[len(c.times)-1]
			b.ReportMetric(ms(p50), "ms_p50_"+key)
			b.ReportMetric(ms(p95), "ms_p95_"+key)
			b.ReportMetric(ms(top), "ms_max_"+key)
			k := fmt.Sprint(c.downAfter[len(c.downAfter)/2])
			if lo, hi := c.downAfter[0], c.downAfter[len(c.downAfter)-1]; lo != hi {
				k = fmt.Sprintf("%d (%d-%d)", c.downAfter[len(c.downAfter)/2], lo, hi)
			}
			fmt.Fprintf(&tab, "| %s (%v) | %.0f %% | %.1f %% | %s | %s | %s | %s | %d | %s / %s |\n",
				c.profile, Profiles[c.profile], 100*c.loss, 100*c.estimate, k, secs(p50), secs(p95), secs(top), c.falseDowns,
				secs(percentile(c.ups, 0.5)), secs(c.ups[len(c.ups)-1]))
			if c.falseDowns > 0 {
				b.Errorf("%s: %d false downs (downs while not cut)", key, c.falseDowns)
			}
			falseDowns += c.falseDowns
			probes += c.probes
		}
		b.ReportMetric(float64(falseDowns), "false_downs")
		b.Logf("detection time, cut to down, %d cuts per cell, %d probes in all (simulated clock):%s", cuts, probes, tab.String())
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// accuracySetting is a path to measure: one-way delay and uniform jitter
// (each way), random loss each way.
type accuracySetting struct {
	oneWay, jitter    time.Duration
	lossFwd, lossBack float64
}

// accuracy is what the Prober measured on a path: the last snapshot, and
// over all snapshots the mean and the largest error of SRTT and loss, and
// how many snapshots were within the targets (RTT within 1 ms + 5 %, loss
// within 2 percentage points).
type accuracy struct {
	last                    Link
	srttMean, srttErr       time.Duration
	lossMean, lossErr       float64
	jitterMean              time.Duration
	fwdMean, bwdMean        float64
	srttOK, lossOK          int
	snapshots, probes, flap int
}

// measure probes the path on the fast profile for warm intervals, then for
// span more, taking a snapshot of the Link every 50 intervals.
func measure(t *testing.T, seed uint64, s accuracySetting, warm, span int) accuracy {
	iv := Profiles["fast"]
	w := startWatched(t, seed, fast("b", peerB), func(p *memPath) {
		p.oneWay, p.jitter, p.lossFwd, p.lossBack = s.oneWay, s.jitter, s.lossFwd, s.lossBack
	})
	time.Sleep(time.Duration(warm) * iv)
	wantRTT, wantLoss := 2*s.oneWay, 1-(1-s.lossFwd)*(1-s.lossBack)
	var a accuracy
	var srtt, jit time.Duration
	for range span / 50 {
		time.Sleep(50 * iv)
		synctest.Wait()
		l := w.link()
		a.last = l
		a.snapshots++
		srtt += l.RTT.SRTT
		jit += l.Jitter
		a.lossMean += l.Loss
		a.fwdMean += l.Forward
		a.bwdMean += l.Backward
		rttErr, lossErr := (l.RTT.SRTT - wantRTT).Abs(), math.Abs(l.Loss-wantLoss)
		a.srttErr, a.lossErr = max(a.srttErr, rttErr), max(a.lossErr, lossErr)
		if rttErr <= time.Millisecond+wantRTT/20 {
			a.srttOK++
		}
		if lossErr <= 0.02 {
			a.lossOK++
		}
	}
	n := a.snapshots
	a.srttMean, a.jitterMean = srtt/time.Duration(n), jit/time.Duration(n)
	a.lossMean, a.fwdMean, a.bwdMean = a.lossMean/float64(n), a.fwdMean/float64(n), a.bwdMean/float64(n)
	a.probes, a.flap = int(a.last.Sent), int(a.last.Flaps)
	return a
}

// BenchmarkAccuracy compares the RTT, jitter and loss the real Prober
// measures with what the in-memory network was set to, on synctest's
// simulated clock (fast profile). The network delays each way, so the
// expected RTT is twice the one-way delay; jitter is uniform in +-J each
// way, so a round trip's change between two probes is the sum of four such
// draws and the expected RFC 3550 jitter is E|sum| = 14/15 J. After 1 000
// intervals it takes a snapshot every 50 intervals for 5 000 more and
// reports the last snapshot and, over the 100, the mean, the largest error
// and the share within the targets (RTT: 1 ms + 5 %, loss: 2 points).
// Run with: go test -run '^$' -bench Accuracy -benchtime 1x -v ./probe/
func BenchmarkAccuracy(b *testing.B) {
	const warm, span = 1000, 5000
	ms5 := 5 * time.Millisecond
	settings := []accuracySetting{
		{oneWay: ms5},
		{oneWay: 20 * time.Millisecond, jitter: ms5, lossFwd: 0.10},
		{oneWay: 50 * time.Millisecond, jitter: 10 * time.Millisecond, lossFwd: 0.05, lossBack: 0.05},
		{oneWay: 100 * time.Millisecond, lossBack: 0.05},
		{oneWay: 20 * time.Millisecond, jitter: 2 * time.Millisecond, lossFwd: 0.20},
	}
	for range b.N {
		results := make([]accuracy, len(settings))
		asTest(b, "BenchmarkAccuracy_bubbles", func(t *testing.T) {
			for i, s := range settings {
				t.Run(fmt.Sprintf("delay%v_jitter%v_loss%.0f_%.0f", s.oneWay, s.jitter, 100*s.lossFwd, 100*s.lossBack), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) { results[i] = measure(t, uint64(100+i), s, warm, span) })
				})
			}
		})
		var tab strings.Builder
		tab.WriteString("\n| one-way delay +- jitter | loss fwd / back | RTT want | SRTT last (mean, max err) | jitter want | jitter last (mean) | loss want | loss last (mean, max err) | fwd / bwd last (mean) | within target RTT / loss | probes | flaps |\n")
		tab.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for i, s := range settings {
			a := results[i]
			wantRTT, wantLoss := 2*s.oneWay, 1-(1-s.lossFwd)*(1-s.lossBack)
			wantJitter := s.jitter * 14 / 15
			l := a.last
			key := fmt.Sprintf("%v_%v_%.0f_%.0f", s.oneWay, s.jitter, 100*s.lossFwd, 100*s.lossBack)
			b.ReportMetric(ms(l.RTT.SRTT), "ms_srtt_"+key)
			b.ReportMetric(ms(a.srttErr), "ms_srtt_maxerr_"+key)
			b.ReportMetric(ms(l.Jitter), "ms_jitter_"+key)
			b.ReportMetric(100*l.Loss, "pct_loss_"+key)
			b.ReportMetric(100*a.lossErr, "pp_loss_maxerr_"+key)
			b.ReportMetric(100*float64(a.lossOK)/float64(a.snapshots), "pct_loss_within_2pp_"+key)
			// Directions are known once the reflector's counter differed
			// from ours, which takes a probe lost on the way out.
			dirs := "not known"
			if l.Directions {
				dirs = fmt.Sprintf("%.1f / %.1f %% (%.1f / %.1f)", 100*l.Forward, 100*l.Backward, 100*a.fwdMean, 100*a.bwdMean)
			}
			fmt.Fprintf(&tab, "| %v +- %v | %.0f / %.0f %% | %v | %.2f ms (%.2f, %.2f) | %.2f ms | %.2f ms (%.2f) | %.2f %% | %.2f %% (%.2f, %.2f pp) | %s | %.0f / %.0f %% | %d | %d |\n",
				s.oneWay, s.jitter, 100*s.lossFwd, 100*s.lossBack,
				wantRTT, ms(l.RTT.SRTT), ms(a.srttMean), ms(a.srttErr),
				ms(wantJitter), ms(l.Jitter), ms(a.jitterMean),
				100*wantLoss, 100*l.Loss, 100*a.lossMean, 100*a.lossErr,
				dirs, 100*float64(a.srttOK)/float64(a.snapshots), 100*float64(a.lossOK)/float64(a.snapshots), a.probes, a.flap)
		}
		b.Logf("requested vs measured, fast profile, %d snapshots over %d intervals after %d (simulated clock):%s", span/50, span, warm, tab.String())
	}
}
