package main

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// linkJSON is one link of roamctl links -o json (protojson: 64-bit integers
// as strings, durations as "0.040s").
type linkJSON struct {
	Name         string  `json:"name"`
	State        string  `json:"state"`
	Flaps        string  `json:"flaps"`
	RTT          string  `json:"rtt"`
	Jitter       string  `json:"jitter"`
	Loss         float64 `json:"loss"`
	LossForward  float64 `json:"loss_forward"`
	LossBackward float64 `json:"loss_backward"`
	Cost         int     `json:"cost"`
	LocalPref    int     `json:"local_pref"`
	ProbesSent   string  `json:"probes_sent"`
	HoldDown     string  `json:"hold_down"`
}

func pbDuration(t *testing.T, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// link is n's link to peer, from roamctl links -o json.
func (n node) link(peer string) linkJSON {
	n.t.Helper()
	var r struct {
		Links []linkJSON `json:"links"`
	}
	out := n.mustRun("/run/roam/bin/roamctl", "links", "-o", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		n.t.Fatalf("roamctl links -o json in %s: %v\n%s", n.name, err, out)
	}
	for _, l := range r.Links {
		if l.Name == peer {
			return l
		}
	}
	n.t.Fatalf("%s: no link to %s in\n%s", n.name, peer, out)
	return linkJSON{}
}

// netem impairs the egress of node's iface (no flags: clears it).
func netem(t testing.TB, file, node, iface string, flags ...string) {
	labtest.MustRun(t, append([]string{"tools", "netem", "set", "-t", file, "-n", node, "-i", iface}, flags...)...)
}

// emulatorCounts are the frames node's emulator on iface sent and lost.
func emulatorCounts(t testing.TB, file, node, iface string) (sent, lost int) {
	out := labtest.MustRun(t, "tools", "netem", "show", "-t", file, "-n", node)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 12 && f[1] == iface {
			sent, _ = strconv.Atoi(f[9])
			lost, _ = strconv.Atoi(f[10])
			return sent, lost
		}
	}
	t.Fatalf("no emulator on %s %s:\n%s", node, iface, out)
	return 0, 0
}

// gapPing pings dst from n every 10 ms, count times, and returns the
// replies and the longest run of missing replies in milliseconds.
func (n node) gapPing(dst string, count int) (replies int, gap time.Duration) {
	n.t.Helper()
	r := n.run("ping", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1", dst)
	last, longest := 0, 0
	for _, line := range strings.Split(r.Stdout, "\n") {
		i := strings.Index(line, "icmp_seq=")
		if i < 0 {
			continue
		}
		seq, _ := strconv.Atoi(strings.Fields(line[i+len("icmp_seq="):])[0])
		replies++
		longest = max(longest, seq-last-1)
		last = seq
	}
	longest = max(longest, count-last)
	return replies, time.Duration(longest) * 10 * time.Millisecond
}

// TestQualityLab: a and b have a direct tunnel and tunnels to a hub, all
// probed every 100 ms. The direct path's measured figures match the
// emulated ones; cutting it moves pod traffic to the hub in under a second;
// repairing it brings the traffic back after the hold-down; 200 ms on the
// direct path against 20 ms through the hub moves the traffic to the hub;
// 20 % loss for 2 minutes takes nothing down.
func TestQualityLab(t *testing.T) {
	labtest.BuildBinaries(t)
	file := labtest.LabFile("quality")
	labtest.Deploy(t, file)
	a, b, pod1 := node{t, file, "a"}, node{t, file, "b"}, node{t, file, "pod1"}

	a.waitInstalled("10.244.2.0/24", "b", 30*time.Second)
	b.waitInstalled("10.244.1.0/24", "a", 10*time.Second)
	pod1.waitPing("10.244.2.2", 10*time.Second)
	if l := a.link("b"); l.State != "up" || l.Cost != 256 || l.LocalPref != 100 {
		t.Fatalf("a's link to b on a clean path: %+v, want up, cost 256, local-pref 100", l)
	}

	t.Run("accuracy", func(t *testing.T) {
		// The path's own round trip (WireGuard in userspace, veths), to
		// take out of the emulated delay.
		base := pbDuration(t, a.link("b").RTT)
		// 40 ms, 5 ms jitter and 10 % loss on the way from a to b.
		netem(t, file, "a", "eth2", "--delay", "40ms", "--jitter", "5ms", "--loss", "10")
		defer netem(t, file, "a", "eth2")
		sent0, lost0 := emulatorCounts(t, file, "a", "eth2")
		// The loss figure covers the last 400 probes (35-40 s). SRTT moves
		// with each sample (gain 1/8): ten readings a second apart are
		// averaged.
		time.Sleep(40 * time.Second)
		var rtt, jitter time.Duration
		var l linkJSON
		for range 10 {
			l = a.link("b")
			rtt += pbDuration(t, l.RTT) / 10
			jitter += pbDuration(t, l.Jitter) / 10
			time.Sleep(time.Second)
		}
		sent1, lost1 := emulatorCounts(t, file, "a", "eth2")
		frames := sent1 - sent0 + lost1 - lost0
		real := float64(lost1-lost0) / float64(frames)
		t.Logf("requested 40ms +-5ms 10%% loss: rtt %v (path alone %v) jitter %v loss %.3f (forward %.3f backward %.3f); the emulator dropped %.3f of %d frames; cost %d local-pref %d",
			rtt, base, jitter, l.Loss, l.LossForward, l.LossBackward, real, frames, l.Cost, l.LocalPref)
		if d := rtt - base - 40*time.Millisecond; d.Abs() > time.Millisecond+2*time.Millisecond {
			t.Errorf("rtt %v with %v for the path alone, want 40 ms more within 1 ms + 5 %%", rtt, base)
		}
		// One reading covers 400 probes: its standard error is
		// sqrt(p(1-p)/400), 1.5 points at 10 %, so the bound is three of
		// them (the estimator's bias, over many readings, is in the probe
		// benchmarks: under 0.5 points).
		if se := math.Sqrt(real * (1 - real) / 400); math.Abs(l.Loss-real) > max(0.02, 3*se) {
			t.Errorf("loss %.3f, want the emulator's %.3f within %.1f points (3 standard errors of 400 probes)", l.Loss, real, 100*3*se)
		}
		// Uniform jitter of +-5 ms on one leg: E|D| = 10/3 ms.
		if jitter < 2*time.Millisecond || jitter > 5*time.Millisecond {
			t.Errorf("jitter %v, want 2-5 ms for +-5 ms uniform", jitter)
		}
		if l.State != "up" || l.Flaps != "0" && l.Flaps != "" {
			t.Errorf("a's link to b at 10%% loss: %s with %s flaps, want up, none", l.State, l.Flaps)
		}
	})
	// The direct path is clean again: its cost recovers (an improvement
	// counts once it held, and the loss each way covers the last 50-100
	// probes) and the traffic goes back to it.
	a.waitInstalled("10.244.2.0/24", "b", 60*time.Second)
	b.waitInstalled("10.244.1.0/24", "a", 60*time.Second)

	t.Run("cut and repair", func(t *testing.T) {
		done := make(chan struct{})
		var replies int
		var gap time.Duration
		go func() {
			defer close(done)
			replies, gap = pod1.gapPing("10.244.2.2", 300)
		}()
		time.Sleep(time.Second)
		labtest.MustRun(t, "link", "set", "-t", file, "-n", "a", "-i", "eth2", "--down", "--mode", "drop")
		<-done
		t.Logf("direct path cut: %d/300 replies, longest gap %v", replies, gap)
		if gap >= time.Second {
			t.Errorf("pod1 -> pod2: a gap of %v in a 10 ms ping stream after the cut, want under 1 s", gap)
		}
		a.waitInstalled("10.244.2.0/24", "hub", 5*time.Second)
		if got, ttl, out := pod1.pingTTL("10.244.2.2", 20); got < 19 || ttl != 61 {
			t.Errorf("pod1 -> pod2 through the hub: %d/20 replies, ttl %d (want 61):\n%s", got, ttl, out)
		}
		if l := a.link("b"); l.State != "down" {
			t.Errorf("a's link to b after the cut: %s, want down", l.State)
		}

		repaired := time.Now()
		labtest.MustRun(t, "link", "set", "-t", file, "-n", "a", "-i", "eth2", "--up", "--mode", "drop")
		hold := pbDuration(t, a.link("b").HoldDown)
		a.waitInstalled("10.244.2.0/24", "b", 30*time.Second)
		back := time.Since(repaired)
		t.Logf("direct path repaired: traffic back on it after %v (hold-down %v)", back, hold)
		if back < hold {
			t.Errorf("the direct path was used again %v after the repair, before the hold-down %v", back, hold)
		}
		b.waitInstalled("10.244.1.0/24", "a", 10*time.Second)
		if got, ttl, out := pod1.pingTTL("10.244.2.2", 20); got < 19 || ttl != 62 {
			t.Errorf("pod1 -> pod2 direct again: %d/20 replies, ttl %d (want 62):\n%s", got, ttl, out)
		}
		// The cut and the repair, as Prometheus sees them.
		resp, err := labtest.HTTPClient("clab-quality-a").Get("http://127.0.0.1:9474/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`roam_link_up{peer="b"} 1`, `roam_link_transitions_total{peer="b",to="down"} 1`,
			`roam_link_transitions_total{peer="b",to="up"} 2`, `roam_link_cost{peer="hub"} 256`, `roam_link_rtt_seconds{peer="b"}`,
			`roam_link_jitter_seconds{peer="b"}`, `roam_link_loss_ratio{direction="round_trip",peer="b"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("a's /metrics lacks %q", want)
			}
		}
	})

	t.Run("degrade", func(t *testing.T) {
		// 200 ms round trip direct, 20 ms through the hub.
		for _, n := range []string{"a", "b"} {
			netem(t, file, n, "eth2", "--delay", "100ms")
			netem(t, file, n, "eth1", "--delay", "5ms")
			defer netem(t, file, n, "eth2")
			defer netem(t, file, n, "eth1")
		}
		start := time.Now()
		a.waitInstalled("10.244.2.0/24", "hub", 20*time.Second)
		t.Logf("direct path at 200 ms: traffic moved to the hub after %v; link %+v", time.Since(start), a.link("b"))
		b.waitInstalled("10.244.1.0/24", "hub", 10*time.Second)
		if got, ttl, out := pod1.pingTTL("10.244.2.2", 20); got < 19 || ttl != 61 {
			t.Errorf("pod1 -> pod2 with the direct path slow: %d/20 replies, ttl %d (want 61, through the hub):\n%s", got, ttl, out)
		}
		if l := a.link("b"); l.State != "up" || l.Flaps != "1" {
			t.Errorf("a's link to b at 200 ms: %s with %s flaps, want up and only the cut's flap", l.State, l.Flaps)
		}
	})

	t.Run("no false down at 20% loss", func(t *testing.T) { noFalseDown(t, file, 2*time.Minute) })
}

// noFalseDown puts 20 % random loss on the direct path of the quality lab
// (egress of a:eth2: a's probes and a's answers to b's, so 20 % round trip
// for both ends) for d and checks that neither end declared it down. The
// loss begins at once on a clean link: a run of 4 as its very first losses
// would read as a cut (0.2^4 = 0.16 % per end).
func noFalseDown(t testing.TB, file string, d time.Duration) {
	a, b := node{t, file, "a"}, node{t, file, "b"}
	{
		before := map[string]string{"a": a.link("b").Flaps, "b": b.link("a").Flaps}
		netem(t, file, "a", "eth2", "--loss", "20")
		defer netem(t, file, "a", "eth2")
		time.Sleep(d)
		la, lb := a.link("b"), b.link("a")
		t.Logf("after %v at 20%% loss: a: %s loss %.3f, %s probes; b: %s loss %.3f", d, la.State, la.Loss, la.ProbesSent, lb.State, lb.Loss)
		if la.State != "up" || lb.State != "up" || la.Flaps != before["a"] || lb.Flaps != before["b"] {
			t.Errorf("20%% loss for %v: a %s flaps %s (before %s), b %s flaps %s (before %s): want up, no new flap",
				d, la.State, la.Flaps, before["a"], lb.State, lb.Flaps, before["b"])
		}
	}
}

// BenchmarkQualityLabNoFalseDown: 10 minutes of 20 % random loss on the
// quality lab's direct path, both ends probing every 100 ms: the number
// of down declarations (must be 0).
func BenchmarkQualityLabNoFalseDown(b *testing.B) {
	labtest.BuildBinaries(b)
	file := labtest.LabFile("quality")
	labtest.Deploy(b, file)
	a := node{b, file, "a"}
	a.waitInstalled("10.244.2.0/24", "b", 30*time.Second)
	for range b.N {
		noFalseDown(b, file, 10*time.Minute)
	}
}
