package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// iperf runs a TCP iperf3 test from a to b's addr for secs seconds and
// returns the receiver's throughput in Mbit/s.
func iperf(b *testing.B, file, addr string, secs int) float64 {
	b.Helper()
	labtest.MustRun(b, "exec", "-t", file, "-n", "b", "--", "iperf3", "-s", "-1", "-D", "-B", addr)
	time.Sleep(200 * time.Millisecond) // iperf3 -D returns before it listens
	out := labtest.MustRun(b, "exec", "-t", file, "-n", "a", "--", "iperf3", "-c", addr, "-t", strconv.Itoa(secs), "-J")
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		b.Fatalf("iperf3 -J: %v\n%s", err, out)
	}
	return res.End.SumReceived.BitsPerSecond / 1e6
}

// plainWireGuard brings up wireguard-go (the version roamd embeds, as the
// go tool "wireguard") on both nodes with the same keys, port and overlay
// addresses as roamd, configured with wg(8) and ip(8) as a user would; it
// returns a function that takes it down again.
func plainWireGuard(b *testing.B, file string) func() {
	b.Helper()
	wgGo, err := exec.Command("go", "tool", "-n", "wireguard").Output()
	if err != nil {
		b.Fatalf("go tool -n wireguard: %v", err)
	}
	bin := strings.TrimSpace(string(wgGo))
	keys := map[string]string{"a": "pair-b", "b": "pair-a"} // node -> its peer's key file
	addr := map[string]string{"a": "100.64.0.1", "b": "100.64.0.2"}
	peerAddr := map[string]string{"a": "100.64.0.2", "b": "100.64.0.1"}
	under := map[string]string{"a": "198.51.100.2", "b": "198.51.100.1"}
	for _, n := range []string{"a", "b"} {
		pub := strings.TrimSpace(labtest.MustRun(b, "exec", "-t", file, "-n", n, "--", "sh", "-c", "wg pubkey < /run/roam/etc/"+keys[n]+".key"))
		script := strings.Join([]string{
			bin + " wgplain",
			"wg set wgplain listen-port 51820 private-key /run/roam/private.key peer " + pub + " endpoint " + under[n] + ":51820 allowed-ips " + peerAddr[n] + "/32",
			"ip addr add " + addr[n] + "/32 dev wgplain",
			"ip link set wgplain mtu 1420 up",
			"ip route add " + peerAddr[n] + "/32 dev wgplain",
		}, " && ")
		labtest.MustRun(b, "exec", "-t", file, "-n", n, "--", "sh", "-c", script)
	}
	return func() {
		for _, n := range []string{"a", "b"} {
			labtest.Run(b, "exec", "-t", file, "-n", n, "--", "ip", "link", "del", "wgplain")
		}
	}
}

func stopRoamd(b *testing.B, file string) {
	b.Helper()
	for _, name := range []string{"a", "b"} {
		if pid := roamdPID(file, name); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 500 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

func startRoamd(b *testing.B, file string) {
	b.Helper()
	for _, name := range []string{"a", "b"} {
		labtest.MustRun(b, "exec", "-t", file, "-n", name, "--", "setsid", "sh", "-c",
			"/run/roam/bin/roamd --config /run/roam/etc/pair-"+name+".yaml >>/run/roam/roamd.log 2>&1 &")
	}
	waitReply(b, file, "100.64.0.2")
}

func waitReply(b *testing.B, file, addr string) {
	b.Helper()
	for i := 0; i < 150; i++ {
		if labtest.Run(b, "exec", "-t", file, "-n", "a", "--", "ping", "-c", "1", "-W", "1", addr).Code == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("no reply from %s", addr)
}

// BenchmarkTunnelThroughput: iperf3 TCP through roamd's tunnel and through
// plain wireguard-go (same version, keys, veth and lab), alternating, three
// rounds of 5 s each; reports both means and their ratio (target >= 0.95).
// Run with: make bench (or go test -run '^$' -bench TunnelThroughput -benchtime 1x ./cmd/roamd)
func BenchmarkTunnelThroughput(b *testing.B) {
	labtest.BuildBinaries(b)
	file := labFile("pair")
	labtest.Deploy(b, file)
	waitReply(b, file, "100.64.0.2")
	for range b.N {
		var roam, plain []float64
		for round := range 3 {
			roam = append(roam, iperf(b, file, "100.64.0.2", 5))
			stopRoamd(b, file)
			down := plainWireGuard(b, file)
			waitReply(b, file, "100.64.0.2")
			plain = append(plain, iperf(b, file, "100.64.0.2", 5))
			down()
			startRoamd(b, file)
			b.Logf("round %d: roamd %.0f Mbit/s, wireguard-go %.0f Mbit/s", round+1, roam[round], plain[round])
		}
		r, p := mean(roam), mean(plain)
		b.ReportMetric(r, "Mbit/s_roamd")
		b.ReportMetric(p, "Mbit/s_wireguard-go")
		b.ReportMetric(r/p, "ratio")
	}
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// BenchmarkIdleFootprint: roamd on the NAT lab's hub (2 peers, tunnels up,
// persistent keepalives from both hosts), idle: resident memory and CPU over
// 20 s.
func BenchmarkIdleFootprint(b *testing.B) {
	labtest.BuildBinaries(b)
	file := labFile("nat")
	labtest.Deploy(b, file)
	for _, h := range []string{"host1", "host2"} {
		for i := 0; i < 150 && labtest.Run(b, "exec", "-t", file, "-n", h, "--", "ping", "-c", "1", "-W", "1", "100.64.0.254").Code != 0; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
	pid := roamdPID(file, "hub")
	if pid == 0 {
		b.Fatal("no roamd on the hub")
	}
	for range b.N {
		t0, c0 := time.Now(), cpuTicks(b, pid)
		time.Sleep(20 * time.Second)
		t1, c1 := time.Now(), cpuTicks(b, pid)
		const hz = 100 // USER_HZ
		b.ReportMetric(100*float64(c1-c0)/hz/t1.Sub(t0).Seconds(), "%cpu_idle")
		b.ReportMetric(rssMiB(b, pid), "MiB_rss")
	}
}

func cpuTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

func rssMiB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
