package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// node runs commands in one node of a deployed lab.
type node struct {
	t    testing.TB
	file string
	name string
}

func (n node) run(args ...string) labtest.Result {
	n.t.Helper()
	return labtest.Run(n.t, append([]string{"exec", "-t", n.file, "-n", n.name, "--"}, args...)...)
}

func (n node) mustRun(args ...string) string {
	n.t.Helper()
	return labtest.MustRun(n.t, append([]string{"exec", "-t", n.file, "-n", n.name, "--"}, args...)...)
}

// waitPing waits (bounded) until one ping from n to addr is answered.
func (n node) waitPing(addr string, limit time.Duration) time.Duration {
	n.t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if n.run("ping", "-c", "1", "-W", "1", addr).Code == 0 {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Fatalf("%s: no reply from %s within %v\n%s", n.name, addr, limit, n.cmdLog())
	return 0
}

func (n node) cmdLog() string {
	data, _ := os.ReadFile(filepath.Join("/run/roamlab", strings.TrimSuffix(filepath.Base(n.file), ".clab.yml"), n.name, "cmd.log"))
	return string(data)
}

type peerJSON struct {
	Name          string   `json:"name"`
	PublicKey     string   `json:"public_key"`
	Endpoint      string   `json:"endpoint"`
	LastHandshake string   `json:"last_handshake"`
	RxBytes       string   `json:"rx_bytes"` // protojson writes int64 as a string
	TxBytes       string   `json:"tx_bytes"`
	AllowedIPs    []string `json:"allowed_ips"`
}

func (n node) peers() []peerJSON {
	n.t.Helper()
	var doc struct{ Peers []peerJSON }
	out := n.mustRun("/run/roam/bin/roamctl", "peers", "-o", "json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		n.t.Fatalf("roamctl peers -o json: %v\n%s", err, out)
	}
	return doc.Peers
}

func (n node) status() map[string]any {
	n.t.Helper()
	var st map[string]any
	out := n.mustRun("/run/roam/bin/roamctl", "status", "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		n.t.Fatalf("roamctl status -o json: %v\n%s", err, out)
	}
	return st
}

// roamdPID is the pid of the roamd running in n's network namespace, or 0.
// (Lab nodes share the host's PID namespace: pidof would find every node's.)
func (n node) roamdPID() int { return roamdPID(n.file, n.name) }

func roamdPID(file, node string) int { return pidOf(file, node, "roamd") }

// pidOf is the pid of a process named comm in the node's network namespace, or 0.
func pidOf(file, node, comm string) int {
	var want syscall.Stat_t
	lab := strings.TrimSuffix(filepath.Base(file), ".clab.yml")
	if syscall.Stat("/run/netns/clab-"+lab+"-"+node, &want) != nil {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		var st syscall.Stat_t
		if strings.TrimSpace(string(name)) == comm && syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) == nil &&
			st.Dev == want.Dev && st.Ino == want.Ino {
			return pid
		}
	}
	return 0
}

func (n node) signal(sig syscall.Signal) int {
	n.t.Helper()
	pid := n.roamdPID()
	if pid == 0 {
		n.t.Fatalf("no roamd running in %s\n%s", n.name, n.cmdLog())
	}
	if err := syscall.Kill(pid, sig); err != nil {
		n.t.Fatal(err)
	}
	return pid
}

func waitGone(t *testing.T, pid int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("roamd (pid %d) still runs %v after SIGTERM", pid, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start starts roamd in n in the background with config, as the lab's cmd does.
func (n node) start(config string) {
	n.t.Helper()
	n.mustRun("setsid", "sh", "-c", "/run/roam/bin/roamd --config "+config+" >>/run/roam/roamd.log 2>&1 &")
}

func TestPairLab(t *testing.T) {
	labtest.BuildBinaries(t)
	file := labtest.LabFile("pair")
	labtest.Deploy(t, file)
	a, b := node{t, file, "a"}, node{t, file, "b"}

	took := a.waitPing("100.64.0.2", 15*time.Second)
	t.Logf("tunnel up %v after deploy", took)
	if out := a.mustRun("ping", "-c", "5", "-i", "0.2", "100.64.0.2"); !strings.Contains(out, "5 received") {
		t.Errorf("ping over roam0:\n%s", out)
	}
	bKey := b.status()["public_key"].(string)
	wg := a.mustRun("wg", "show", "roam0")
	if !strings.Contains(wg, "peer: "+bKey) || !strings.Contains(wg, "latest handshake") {
		t.Errorf("wg show roam0 in a does not list b (%s) with a handshake:\n%s", bKey, wg)
	}
	peers := a.peers()
	if len(peers) != 1 || peers[0].Name != "b" || peers[0].PublicKey != bKey || peers[0].LastHandshake == "" ||
		peers[0].RxBytes == "" || peers[0].Endpoint != "198.51.100.2:51820" {
		t.Errorf("roamctl peers in a: %+v", peers)
	}
	table := a.mustRun("/run/roam/bin/roamctl", "peers")
	if !strings.Contains(table, "b ") || strings.Contains(table, "never") {
		t.Errorf("roamctl peers table:\n%s", table)
	}
	st := a.status()
	if st["node"] != "a" || st["tunnel_mode"] != "userspace" || fmt.Sprint(st["overlay_addresses"]) != "[100.64.0.1/32 fd64::1/128]" {
		t.Errorf("roamctl status: %v", st)
	}

	t.Run("metrics", func(t *testing.T) {
		resp, err := labtest.HTTPClient("clab-pair-a").Get("http://127.0.0.1:9474/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"roam_tunnel_peers 1", `roam_peer_rx_bytes_total{peer="b"}`, `roam_peer_last_handshake_seconds{peer="b"}`, "go_goroutines", "process_resident_memory_bytes"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	t.Run("bgp over the overlay", func(t *testing.T) {
		// The stock gobgp CLI against roamd's gRPC API, inside each node.
		gobgp := func(n node, args ...string) string {
			return n.mustRun(append([]string{"/run/roam/bin/gobgp"}, args...)...)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(gobgp(a, "neighbor"), "Establ") && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if out := gobgp(a, "neighbor"); !strings.Contains(out, "100.64.0.2") || !strings.Contains(out, "Establ") {
			t.Fatalf("a's BGP session with b over the overlay is not up:\n%s\n%s", out, a.cmdLog())
		}
		for _, c := range []struct {
			n             node
			want, nextHop string
		}{{a, "10.244.2.0/24", "100.64.0.2"}, {b, "10.244.1.0/24", "100.64.0.1"}} {
			var rib string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				if rib = gobgp(c.n, "global", "rib"); strings.Contains(rib, c.want) {
					break
				}
			}
			line := ""
			for _, l := range strings.Split(rib, "\n") {
				if strings.Contains(l, c.want) {
					line = l
				}
			}
			if !strings.Contains(line, c.nextHop) {
				t.Errorf("%s: no route to %s via %s in its RIB:\n%s", c.n.name, c.want, c.nextHop, rib)
			}
		}
	})

	t.Run("ipv6 over the ipv4 session", func(t *testing.T) {
		// b's IPv6 pod prefix is installed into b's AllowedIPs and routed
		// (in table 100, bgp.table of the pair lab, which an ip rule uses).
		a.waitInstalled("fd44:2::/64", "b", 10*time.Second)
		if r := a.mustRun("ip", "-6", "route", "show", "table", "100", "fd44:2::/64"); !strings.Contains(r, "dev roam0") || !strings.Contains(r, "proto 114") {
			t.Errorf("a's IPv6 route to b's pod prefix: %q", r)
		}
		if r := a.mustRun("ip", "route", "show", "table", "main", "proto", "114"); strings.TrimSpace(r) != "" {
			t.Errorf("roam routes in the main table although bgp.table is 100:\n%s", r)
		}
		if rib := a.mustRun("/run/roam/bin/gobgp", "global", "rib", "-a", "ipv6"); !strings.Contains(rib, "fd44:2::/64") || !strings.Contains(rib, "fd64::2") {
			t.Errorf("gobgp global rib -a ipv6 in a lacks fd44:2::/64 via fd64::2:\n%s", rib)
		}
		if out := a.mustRun("ping", "-6", "-c", "3", "-i", "0.2", "fd64::2"); !strings.Contains(out, "3 received") {
			t.Errorf("ping over roam0 with IPv6:\n%s", out)
		}
	})

	t.Run("bgp metrics", func(t *testing.T) {
		// After the subtests above, a has b's two prefixes installed into the tunnel.
		var body string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			resp, err := labtest.HTTPClient("clab-pair-a").Get("http://127.0.0.1:9474/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); strings.Contains(body, `roam_fib_routes{via="tunnel"} 2`) {
				break
			}
		}
		for _, want := range []string{`roam_fib_routes{via="tunnel"} 2`, `roam_fib_routes{via="gateway"} 0`,
			`roam_bgp_updates_total{action="best"}`, "bgp_peer_state", "bgp_received_update_total"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	t.Run("reload", func(t *testing.T) {
		// Run a's roamd from a writable copy of its config, then add a peer.
		cfg := "/run/roam/a.yaml"
		a.mustRun("cp", "/run/roam/etc/pair-a.yaml", cfg)
		pid := a.signal(syscall.SIGTERM)
		waitGone(t, pid, 10*time.Second)
		a.start(cfg)
		a.waitPing("100.64.0.2", 15*time.Second)
		before := a.mustRun("wg", "show", "roam0", "latest-handshakes")
		a.mustRun("sh", "-c", "cat >> "+cfg+` <<'EOF'
  - name: c
    public_key: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
    addresses: [100.64.0.3/32]
EOF`)
		a.signal(syscall.SIGHUP)
		deadline := time.Now().Add(10 * time.Second)
		for len(a.peers()) != 2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if ps := a.peers(); len(ps) != 2 {
			t.Fatalf("after SIGHUP with a new peer: %+v", ps)
		}
		after := a.mustRun("wg", "show", "roam0", "latest-handshakes")
		if !strings.Contains(after, strings.TrimSpace(before)) {
			t.Errorf("reload disturbed b: handshakes before\n%s\nafter\n%s", before, after)
		}
		if r := a.run("ip", "route", "show", "table", "100", "100.64.0.3"); !strings.Contains(r.Stdout, "dev roam0") {
			t.Errorf("no route to the new peer: %q", r.Stdout)
		}
	})

	t.Run("restart keeps the key", func(t *testing.T) {
		pid := b.signal(syscall.SIGTERM)
		waitGone(t, pid, 10*time.Second)
		// Clean shutdown: the device, its routes and its UAPI socket are gone.
		if r := b.run("ip", "link", "show", "roam0"); r.Code == 0 {
			t.Errorf("roam0 remains after SIGTERM:\n%s", r.Stdout)
		}
		if r := b.run("ls", "/var/run/wireguard/roam0.sock"); r.Code == 0 {
			t.Error("UAPI socket remains after SIGTERM")
		}
		if r := b.run("ip", "route", "show", "table", "all", "100.64.0.1"); strings.TrimSpace(r.Stdout) != "" {
			t.Errorf("route remains after SIGTERM: %s", r.Stdout)
		}
		b.start("/run/roam/etc/pair-b.yaml")
		took := a.waitPing("100.64.0.2", 15*time.Second)
		t.Logf("tunnel back %v after restarting b", took)
		if got := b.status()["public_key"]; got != bKey {
			t.Errorf("public key after restart %v, want %s", got, bKey)
		}
	})
}

// TestNATLabOverlay: two hosts behind their own NATs, each with a static
// tunnel to the hub only, reach each other's overlay address; the hub
// forwards (one hop: TTL 63) and its counters show both peers.
func TestNATLabOverlay(t *testing.T) {
	labtest.BuildBinaries(t)
	file := labtest.LabFile("nat")
	labtest.Deploy(t, file)
	host1, host2, hub := node{t, file, "host1"}, node{t, file, "host2"}, node{t, file, "hub"}
	host1.waitPing("100.64.0.254", 15*time.Second)
	host2.waitPing("100.64.0.254", 15*time.Second)
	took := host1.waitPing("100.64.0.2", 15*time.Second)
	t.Logf("host1 -> host2 over the hub after %v", took)
	out := host1.mustRun("ping", "-c", "5", "-i", "0.2", "100.64.0.2")
	if !strings.Contains(out, "5 received") || !strings.Contains(out, "ttl=63") || strings.Contains(out, "Redirect") {
		t.Errorf("host1 -> host2 via the hub:\n%s", out)
	}
	host2.mustRun("ping", "-c", "2", "-i", "0.2", "100.64.0.1")
	for _, p := range hub.peers() {
		if p.LastHandshake == "" || p.RxBytes == "0" || !strings.HasPrefix(p.Endpoint, "203.0.113.1") {
			t.Errorf("hub's peer %s: %+v (want a handshake, traffic, and the NAT's public endpoint)", p.Name, p)
		}
	}
}
