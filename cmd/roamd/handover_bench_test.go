package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// Plain WireGuard beside roamd in the mobile lab: mobile 100.64.1.1 and the
// hub 100.64.1.254, port 51821.
const (
	plainMobile = "100.64.1.1"
	plainHub    = "100.64.1.254"
)

// plainWireGuardMobile brings up wireguard-go (the version roamd embeds, the
// go tool "wireguard") beside roamd on mobile and the hub, configured with
// wg(8) and ip(8) as a user has it today: the same keys, its own port 51821
// and overlay 100.64.1.x, the hub as mobile's endpoint with a persistent
// keepalive of 25 s, and no endpoint on the hub's side (it learns mobile's
// from the NAT). It waits (bounded) until the hub reaches mobile through it.
func plainWireGuardMobile(b *testing.B, file string) {
	b.Helper()
	wgGo, err := exec.Command("go", "tool", "-n", "wireguard").Output()
	if err != nil {
		b.Fatalf("go tool -n wireguard: %v", err)
	}
	bin := strings.TrimSpace(string(wgGo))
	for _, n := range []struct{ name, peerKey, peerOpts, self, peer string }{
		{"hub", "mobile-mobile", "", plainHub, plainMobile},
		{"mobile", "mobile-hub", " endpoint 203.0.113.1:51821 persistent-keepalive 25", plainMobile, plainHub},
	} {
		script := strings.Join([]string{
			bin + " wgplain",
			"wg set wgplain listen-port 51821 private-key /run/roam/private.key peer $(wg pubkey < /run/roam/etc/" + n.peerKey + ".key)" +
				n.peerOpts + " allowed-ips " + n.peer + "/32",
			"ip addr add " + n.self + "/32 dev wgplain",
			"ip link set wgplain mtu 1420 up",
			"ip route add " + n.peer + "/32 dev wgplain",
		}, " && ")
		labtest.MustRun(b, "exec", "-t", file, "-n", n.name, "--", "sh", "-c", script)
	}
	// mobile speaks first (its endpoint is the hub's): until then the hub
	// has nowhere to send.
	mobile, hub := node{b, file, "mobile"}, node{b, file, "hub"}
	mobile.waitPing(plainHub, 15*time.Second)
	hub.waitPing(plainMobile, 5*time.Second)
}

// plainMove makes the move while the hub pings mobile over plain WireGuard
// every 10 ms, and returns the longest silence of that stream from the
// move's command until replies come steadily again (bounded to 40 s).
func (l *mobLab) plainMove(mv hoMove) time.Duration {
	b := l.t
	b.Helper()
	const limit = 40 * time.Second
	s := startPing(b, l.file, "hub", plainMobile, limit+2*time.Second)
	for start := time.Now(); !s.last().After(start); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 3*time.Second {
			b.Fatalf("plain WireGuard, %s: no replies before the move", mv.desc)
		}
	}
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	mv.do()
	for {
		now := time.Now()
		if (now.Sub(t0) > 1500*time.Millisecond && now.Sub(s.last()) < 200*time.Millisecond) || now.Sub(t0) > limit {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	gap, resumed := outage(s.stop(), t0, time.Now())
	if !resumed {
		b.Errorf("plain WireGuard, %s: no replies for %v", mv.desc, gap.Round(time.Millisecond))
	}
	b.Logf("plain WireGuard, %s: hub -> %s silent for %v", mv.desc, plainMobile, gap.Round(time.Millisecond))
	return gap
}

// waitFollowed waits (bounded) until routes and paths follow mobile behind
// nat (mobLab.followed), so that a move starts from a settled lab.
func (l *mobLab) waitFollowed(nat string, limit time.Duration) {
	l.t.Helper()
	start := time.Now()
	for {
		err := l.followed(nat)
		if err == nil {
			return
		}
		if time.Since(start) > limit {
			l.t.Fatalf("routes and paths do not follow mobile to %s within %v: %v", nat, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkHandover: mobile's handover time in the mobile lab over 20 moves
// (wifi cut, wifi repair, alternating: 10 round trips wifi -> lte -> wifi),
// against plain WireGuard roaming as a user has it today, in the same run
// and lab. For roamd, the silence of two ping streams to mpod (10 ms apart,
// from bird through the hub and from ppod over the direct path) from the
// move's command to the first reply after it, and when mobile's handover
// event reached hub_path, direct_path peer and routes. For plain
// wireguard-go (port 51821 beside roamd, persistent keepalive 25 s on
// mobile), the silence of the hub's pings to mobile over it. Plain
// WireGuard takes up to ~25 s per cut, so it makes 5 round trips only, one
// before every other roamd round trip, so that noise hits both.
// Reports p50, p95 and max of each in ms; a stream silent for longer than
// TestMobileLab's bound of 5 s is logged, and counted, not a failure.
// Run with: go test -count=1 -run '^$' -bench Handover -benchtime 1x -v ./cmd/roamd/
func BenchmarkHandover(b *testing.B) {
	labtest.BuildBinaries(b)
	file := labtest.LabFile("mobile")
	labtest.Deploy(b, file)
	b.Cleanup(func() { mobLogs(b, file) })
	waitMobileLab(b, file)
	l := newMobLab(b, file)
	l.measure = true
	l.waitFollowed(mobWifiNAT, 15*time.Second)
	plainWireGuardMobile(b, file)
	for range b.N {
		var roamd []hoResult
		var plainCut, plainRepair []time.Duration
		for i := range 10 {
			if i%2 == 0 {
				plainCut = append(plainCut, l.plainMove(wifiCut(b, file)))
				plainRepair = append(plainRepair, l.plainMove(wifiRepair(b, file)))
				l.waitFollowed(mobWifiNAT, 15*time.Second)
			}
			roamd = append(roamd, l.handover(wifiCut(b, file)), l.handover(wifiRepair(b, file)))
		}
		var w strings.Builder
		tw := tabwriter.NewWriter(&w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TUNNEL\tMEASURE (from the move's command)\tN\tP50\tP95\tMAX")
		report := func(tunnel, measure, metric string, ds []time.Duration) {
			p50, p95, top := quantile(ds, 0.5), quantile(ds, 0.95), quantile(ds, 1)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%v\t%v\n", tunnel, measure, len(ds), p50, p95, top)
			for _, q := range []struct {
				name string
				d    time.Duration
			}{{"p50", p50}, {"p95", p95}, {"max", top}} {
				b.ReportMetric(float64(q.d.Microseconds())/1000, metric+"_"+q.name+"_ms")
			}
		}
		for _, m := range []struct{ measure, metric string }{
			{"gap bird -> " + mobMpod, "bird"}, {"gap ppod -> " + mobMpod, "ppod"},
			{"hub_path", "hub_path"}, {"direct_path peer", "direct_path"}, {"routes", "routes"},
		} {
			report("roamd", m.measure, m.metric, hoValues(roamd, "", m.measure))
		}
		report("wireguard-go", "gap hub -> "+plainMobile+", wifi cut", "plain_cut", plainCut)
		report("wireguard-go", "gap hub -> "+plainMobile+", wifi repair", "plain_repair", plainRepair)
		tw.Flush()
		b.Logf("handover, %d roamd moves and %d plain WireGuard moves "+
			"(go test -count=1 -run '^$' -bench Handover -benchtime 1x -v ./cmd/roamd/):\n%s\nroamd per kind of move:\n%s",
			len(roamd), len(plainCut)+len(plainRepair), w.String(), hoTable(roamd))
	}
}
