package emulator

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Root tests: each builds its own two-namespace lab (see newLab) and drives
// the emulator through Apply, exactly as roamlab does.

const ms1 = time.Millisecond

// slack is how far a timed test lets a measured delay stray from the request.
// These tests prove an impairment is applied, on shared and loaded machines;
// the accuracy we hold ourselves to (1 ms at 10 000 frames/s) is measured by
// the benchmarks (bench_linux_test.go, BENCHMARKS.md), not asserted here.
const slack = 5 * ms1

func TestEmulatorDelay(t *testing.T) {
	l := newLab(t)
	base := ping(t, l.a, l.b.addr, "-c", "50", "-i", "0.01")
	l.apply(t, Impairment{Delay: 50 * ms1})
	got := ping(t, l.a, l.b.addr, "-c", "200", "-i", "0.01")
	want := 50*ms1 + base.avg
	t.Logf("delay 50ms: mean RTT %v over %d probes, baseline %v, want %v ± 5ms", got.avg, got.received, base.avg, want)
	if got.received != 200 || !within(got.avg, want, slack) {
		t.Errorf("mean RTT %v (%d/200 replies), want %v ± 5ms", got.avg, got.received, want)
	}

	st, err := Show(l.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Interface != "eth1" || st[0].Backend != "userspace" || !st[0].Running ||
		st[0].Impairment != (Impairment{Delay: 50 * ms1}) {
		t.Fatalf("Show() = %+v, want eth1 userspace running with delay 50ms", st)
	}
}

// TestEmulatorHighRate sends 10 000 datagrams/s for 1 s through a 20 ms delay.
func TestEmulatorHighRate(t *testing.T) {
	l := newLab(t)
	base := sendUDP(t, l.a, l.b, 2000, 10_000)
	t.Logf("baseline: %v", base)
	l.apply(t, Impairment{Delay: 20 * ms1})
	got := sendUDP(t, l.a, l.b, 10_000, 10_000)
	want := 20*ms1 + base.mean()
	t.Logf("delay 20ms at 10k/s: %v; want mean %v ± 5ms", got, want)
	if !within(got.mean(), want, slack) {
		t.Errorf("mean one-way delay %v, want %v ± 5ms", got.mean(), want)
	}
	if got.received < got.sent*995/1000 {
		t.Errorf("received %d of %d datagrams, want at least 99.5%%", got.received, got.sent)
	}
	if got.elapsed > 3000*ms1 {
		t.Errorf("sending 10 000 datagrams took %v, the test did not reach 10 000/s", got.elapsed)
	}
}

func TestEmulatorLoss(t *testing.T) {
	l := newLab(t)
	l.apply(t, Impairment{Loss: 20})
	// 5000 probes: the binomial spread is 0.57 points, so ±2 points is 3.5 σ.
	got := sendUDP(t, l.a, l.b, 5000, 10_000)
	t.Logf("loss 20%%: measured %.2f%% over %d datagrams", got.lossPercent(), got.sent)
	if loss := got.lossPercent(); loss < 18 || loss > 22 {
		t.Errorf("measured loss %.2f%%, want 20 ± 2", loss)
	}
	st := waitCounters(t, l, func(s Status) bool { return s.Sent+s.Lost >= uint64(got.sent) })
	t.Logf("emulator counters: sent %d, lost %d", st.Sent, st.Lost)
	if st.Lost != uint64(got.sent-got.received) {
		t.Errorf("emulator counted %d lost, the receiver missed %d", st.Lost, got.sent-got.received)
	}
}

// waitCounters returns node a's eth1 status once ok holds, bounded in time;
// the emulator publishes every 200 ms.
func waitCounters(t *testing.T, l *lab, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := Show(l.stateDir)
		if err != nil || len(st) != 1 {
			t.Fatalf("Show() = %+v, %v", st, err)
		}
		if ok(st[0]) || time.Now().After(deadline) {
			return st[0]
		}
		time.Sleep(statusInterval / 4)
	}
}

func TestEmulatorRate(t *testing.T) {
	l := newLab(t)
	l.apply(t, Impairment{RateKbps: 1000})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	server := exec.CommandContext(ctx, "ip", "netns", "exec", l.b.name, "iperf3", "-s", "-1", "--forceflush", "-B", l.b.addr)
	stdout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer server.Wait()
	defer cancel()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening") {
	}
	go func() { // keep the pipe drained
		for sc.Scan() {
		}
	}()

	// A 32 KiB window keeps the emulator's queue short, so iperf3's final
	// exchange is not stuck behind seconds of queued data.
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.a.name,
		"iperf3", "-c", l.b.addr, "-t", "3", "-w", "32K", "-J").Output()
	if err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out)
	}
	var res struct {
		End struct {
			SumSent struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	got := res.End.SumReceived.BitsPerSecond / 1000
	t.Logf("rate 1000kbit: TCP goodput received %.0f kbit/s (sender %.0f kbit/s)", got, res.End.SumSent.BitsPerSecond/1000)
	// The limit must hold; a loaded machine may fall somewhat short of it.
	if got < 800 || got > 1050 {
		t.Errorf("TCP goodput %.0f kbit/s, want 800..1050 for a 1000 kbit/s limit", got)
	}
}

// TestEmulatorChange changes the delay from 10 ms to 60 ms while a ping
// stream runs: the replies to probes sent after Apply returns take 60 ms.
func TestEmulatorChange(t *testing.T) {
	l := newLab(t)
	base := ping(t, l.a, l.b.addr, "-c", "20", "-i", "0.01")
	l.apply(t, Impairment{Delay: 10 * ms1})
	changedAt := -1 // highest seq answered when the change was in force
	replies := pingStream(t, l.a, l.b.addr, func(r reply) {
		if changedAt < 0 && r.seq >= 50 {
			l.apply(t, Impairment{Delay: 60 * ms1})
			changedAt = r.seq
		}
	}, "-c", "200", "-i", "0.01")
	if len(replies) < 190 || changedAt < 0 {
		t.Fatalf("%d replies, change at seq %d: %s", len(replies), changedAt, joinReplies(replies))
	}
	var before, after []time.Duration
	for _, r := range replies {
		switch {
		case r.seq <= changedAt:
			before = append(before, r.rtt)
		// Probes sent after Apply returned: the next one may already have
		// been queued under the old delay.
		case r.seq > changedAt+2:
			after = append(after, r.rtt)
		}
	}
	mb, ma := meanOf(before), meanOf(after)
	t.Logf("delay 10ms -> 60ms at seq %d: mean RTT before %v (%d), after %v (%d), baseline %v",
		changedAt, mb, len(before), ma, len(after), base.avg)
	if !within(mb, 10*ms1+base.avg, slack) || !within(ma, 60*ms1+base.avg, slack) {
		t.Errorf("mean RTT %v before, %v after; want 10ms and 60ms (+ %v) ± 5ms\n%s", mb, ma, base.avg, joinReplies(replies))
	}
	for _, d := range after {
		if d < 60*ms1 {
			t.Errorf("RTT %v after the change to 60ms", d)
		}
	}
}

func meanOf(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(len(ds), 1))
}

func TestEmulatorCorrupt(t *testing.T) {
	l := newLab(t)
	l.apply(t, Impairment{Corrupt: 100})
	// Every echo request arrives with a bit flipped in its ICMP message,
	// fails the ICMP checksum and gets no reply.
	got := ping(t, l.a, l.b.addr, "-c", "20", "-i", "0.01", "-W", "0.3")
	if got.received != 0 {
		t.Errorf("%d of %d corrupted echo requests answered, want 0", got.received, got.sent)
	}
	st := waitCounters(t, l, func(s Status) bool { return s.Corrupted >= 20 })
	if st.Corrupted != 20 || st.Sent != 20 {
		t.Errorf("emulator counted %d corrupted of %d sent, want 20 of 20", st.Corrupted, st.Sent)
	}
}

// tapLink matches the emulator's TAP in `ip -o link show` output.
var tapLink = regexp.MustCompile(`(?m)^\d+: emu\d+:`)

// TestEmulatorZero checks that the zero impairment leaves no trace: no
// emulator process, no TAP, no clsact qdisc, no state, direct RTT.
func TestEmulatorZero(t *testing.T) {
	l := newLab(t)
	base := ping(t, l.a, l.b.addr, "-c", "20", "-i", "0.01")
	l.apply(t, Impairment{Delay: 5 * ms1})
	p := findEmulator(filesFor(l.stateDir, "eth1"))
	if p == nil {
		t.Fatal("no emulator process after Apply")
	}
	p.close()
	if qd := run(t, "ip", "netns", "exec", l.a.name, "tc", "qdisc", "show", "dev", "eth1"); !strings.Contains(qd, "clsact") {
		t.Fatalf("no clsact qdisc while emulating:\n%s", qd)
	}
	if links := run(t, "ip", "-n", l.a.name, "-o", "link", "show"); !tapLink.MatchString(links) {
		t.Fatalf("no TAP while emulating:\n%s", links)
	}

	l.apply(t, Impairment{})
	if qd := run(t, "ip", "netns", "exec", l.a.name, "tc", "qdisc", "show", "dev", "eth1"); strings.Contains(qd, "clsact") {
		t.Errorf("clsact qdisc left after Apply(none):\n%s", qd)
	}
	if links := run(t, "ip", "-n", l.a.name, "-o", "link", "show"); tapLink.MatchString(links) {
		t.Errorf("TAP left after Apply(none):\n%s", links)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(p.pid)); err == nil && alive(p.pid, filesFor(l.stateDir, "eth1").config) {
		t.Errorf("emulator pid %d still running after Apply(none)", p.pid)
	}
	if st, err := Show(l.stateDir); err != nil || len(st) != 0 {
		t.Errorf("Show() = %+v, %v after Apply(none), want nothing", st, err)
	}
	got := ping(t, l.a, l.b.addr, "-c", "20", "-i", "0.01")
	if got.received != 20 || got.avg > base.avg+2*ms1 {
		t.Errorf("RTT %v (%d/20) after Apply(none), want the direct %v", got.avg, got.received, base.avg)
	}
}

// TestEmulatorCrash checks what a user sees when the emulator dies: Show
// says it is not running, and the next Apply restarts it.
func TestEmulatorCrash(t *testing.T) {
	l := newLab(t)
	imp := Impairment{Delay: 5 * ms1}
	l.apply(t, imp)
	p := findEmulator(filesFor(l.stateDir, "eth1"))
	if p == nil {
		t.Fatal("no emulator process after Apply")
	}
	if err := p.signal(9); err != nil {
		t.Fatal(err)
	}
	if err := p.awaitExit(t.Context(), l.stateDir); err != nil {
		t.Fatal(err)
	}
	p.close()
	if st, err := Show(l.stateDir); err != nil || len(st) != 1 || st[0].Running {
		t.Fatalf("Show() = %+v, %v after the emulator died, want eth1 not running", st, err)
	}
	l.apply(t, imp)
	if st, err := Show(l.stateDir); err != nil || len(st) != 1 || !st[0].Running {
		t.Fatalf("Show() = %+v, %v after Apply restarted it, want eth1 running", st, err)
	}
	got := ping(t, l.a, l.b.addr, "-c", "10", "-i", "0.01")
	if got.received != 10 || got.avg < 5*ms1 {
		t.Errorf("RTT %v (%d/10) after restart, want 5ms more than direct", got.avg, got.received)
	}
}

// TestEmulatorNoSuchInterface checks that a failed start is reported at
// once, with the emulator's own words, and leaves nothing behind.
func TestEmulatorNoSuchInterface(t *testing.T) {
	l := newLab(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = Apply(t.Context(), l.a.path(), "eth9", Impairment{Delay: ms1}, l.stateDir, exe)
	if err == nil {
		t.Fatal("Apply to a missing interface succeeded")
	}
	t.Logf("Apply took %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !strings.Contains(err.Error(), "emulator process exited") {
		t.Errorf("error %q does not say the emulator exited", err)
	}
	if !strings.Contains(readLog(t, l, "eth9"), "interface eth9") {
		t.Errorf("emulator log does not name the missing interface:\n%s", readLog(t, l, "eth9"))
	}
	if st, err := Show(l.stateDir); err != nil || len(st) != 0 {
		t.Errorf("Show() = %+v, %v after a failed start, want nothing", st, err)
	}
}

func readLog(t *testing.T, l *lab, iface string) string {
	b, err := os.ReadFile(filesFor(l.stateDir, iface).log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
