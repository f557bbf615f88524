package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

type routesJSON struct {
	Originated []struct {
		Prefix string `json:"prefix"`
	} `json:"originated"`
	Learned []struct {
		Prefix   string `json:"prefix"`
		NextHop  string `json:"next_hop"`
		Best     bool   `json:"best"`
		FromName string `json:"from_name"`
	} `json:"learned"`
	Installed []struct {
		Prefix  string `json:"prefix"`
		Peer    string `json:"peer"`
		Gateway string `json:"gateway"`
	} `json:"installed"`
}

// routes is roamctl routes -o json; empty while roamd does not answer.
func (n node) routes() routesJSON {
	n.t.Helper()
	var r routesJSON
	res := n.run("/run/roam/bin/roamctl", "routes", "-o", "json")
	if res.Code != 0 {
		return r
	}
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		n.t.Fatalf("roamctl routes -o json in %s: %v\n%s", n.name, err, res.Stdout)
	}
	return r
}

// installedVia is the peer (or gateway) prefix is installed towards, or "".
func (r routesJSON) installedVia(prefix string) string {
	for _, i := range r.Installed {
		if i.Prefix == prefix {
			return i.Peer + i.Gateway
		}
	}
	return ""
}

// waitInstalled waits (bounded) until prefix is installed towards via.
func (n node) waitInstalled(prefix, via string, limit time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := n.routes()
		if r.installedVia(prefix) == via {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: %s is installed towards %q after %v, want %q\nroamctl routes:\n%s\n%s", n.name, prefix,
				r.installedVia(prefix), limit, via, n.run("/run/roam/bin/roamctl", "routes").Stdout, n.cmdLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var ttlRe = regexp.MustCompile(`ttl=(\d+)`)

// pingTTL pings dst count times from n (10 ms apart) and returns the
// replies and the TTL of the last one.
func (n node) pingTTL(dst string, count int) (received, ttl int, out string) {
	n.t.Helper()
	r := n.run("ping", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1", dst)
	m := ttlRe.FindAllStringSubmatch(r.Stdout, -1)
	if len(m) > 0 {
		ttl, _ = strconv.Atoi(m[len(m)-1][1])
	}
	return len(m), ttl, r.Stdout
}

// rxPackets is the receive packet counter of dev in n.
func (n node) rxPackets(dev string) int {
	n.t.Helper()
	out := n.mustRun("cat", "/sys/class/net/"+dev+"/statistics/rx_packets")
	v, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		n.t.Fatalf("rx_packets of %s in %s: %q", dev, n.name, out)
	}
	return v
}

// TestNATLabBGP: three roamd (a hub and two hosts behind NATs, tunnels only
// to the hub) exchange their pod prefixes over BGP; pod1 reaches pod2
// through the hub.
func TestNATLabBGP(t *testing.T) {
	labtest.BuildBinaries(t)
	file := labtest.LabFile("nat")
	labtest.Deploy(t, file)
	host1, host2, hub := node{t, file, "host1"}, node{t, file, "host2"}, node{t, file, "hub"}
	pod1 := node{t, file, "pod1"}

	host1.waitInstalled("10.244.2.0/24", "hub", 30*time.Second)
	host2.waitInstalled("10.244.1.0/24", "hub", 30*time.Second)
	hub.waitInstalled("10.244.1.0/24", "host1", 10*time.Second)
	pod1.waitPing("10.244.2.2", 10*time.Second)
	// pod1 -> host1 -> hub -> host2 -> pod2 and back: three routers.
	if got, ttl, out := pod1.pingTTL("10.244.2.2", 20); got != 20 || ttl != 61 {
		t.Fatalf("pod1 -> pod2 through the hub: %d/20 replies, ttl %d (want 61):\n%s", got, ttl, out)
	}
	if r := host1.mustRun("ip", "route", "show", "10.244.2.0/24"); !strings.Contains(r, "dev roam0") || !strings.Contains(r, "proto 114") {
		t.Errorf("host1's kernel route to pod2's prefix: %q, want dev roam0 proto 114", r)
	}
	if wg := host1.mustRun("wg", "show", "roam0", "allowed-ips"); !strings.Contains(wg, "10.244.2.0/24") {
		t.Errorf("host1: 10.244.2.0/24 is not in the hub's AllowedIPs:\n%s", wg)
	}

	t.Run("direct tunnel", func(t *testing.T) { natLabDirectTunnel(t, file) })
}

// natLabDirectTunnel: each host adds the other as a peer and reloads (SIGHUP:
// the tunnel peer and its BGP session come and go with the config, roamd keeps
// running); the best path moves to the direct tunnel and traffic stops
// crossing the hub; removing the peer moves it back.
func natLabDirectTunnel(t *testing.T, file string) {
	host1, host2, hub := node{t, file, "host1"}, node{t, file, "host2"}, node{t, file, "hub"}
	pod1 := node{t, file, "pod1"}
	// A direct tunnel: each host adds the other and reloads roamd, which
	// adds the tunnel peer and the BGP session over it (host1, the lower
	// overlay address, dials the session; host2 refuses it until its own
	// reload). host2's NAT forwards WireGuard's port to it, and only host1
	// starts the WireGuard handshake: when both sides send at once, Linux
	// conntrack on the far NAT records the inbound packet first and remaps
	// the outbound flow to another port, so the two never meet (hole
	// punching is ICE's job, with other ports).
	nat2 := node{t, file, "nat2"}
	nat2.mustRun("nft", "add chain ip nat prerouting { type nat hook prerouting priority -100; }")
	nat2.mustRun("nft", "add rule ip nat prerouting iifname eth1 udp dport 51820 dnat to 192.0.2.66")
	direct := map[node]string{
		host1: "  - {name: host2, public_key: qNLbZwHPhSeQYe4JovEWIUv1BcLP1yQ1YoppKtM1B00=, endpoint: 203.0.113.12:51820, addresses: [100.64.0.2/32], persistent_keepalive: 5s}\n",
		host2: "  - {name: host1, public_key: VZDMSbOH8qpwjG9OrwmKPMbhagOXoI5dKRJZJXGjI3U=, addresses: [100.64.0.1/32]}\n",
	}
	for n, peer := range direct {
		n.mustRun("sh", "-c", "cp /run/roam/roamd.yaml /run/roam/roamd.yaml.orig && printf '%s' '"+peer+"' >> /run/roam/roamd.yaml")
		n.signal(syscall.SIGHUP)
	}
	start := time.Now()
	host1.waitInstalled("10.244.2.0/24", "host2", 30*time.Second)
	host2.waitInstalled("10.244.1.0/24", "host1", 10*time.Second)
	t.Logf("best path moved to the direct tunnel %v after the reloads", time.Since(start).Round(time.Millisecond))
	before := hub.rxPackets("roam0")
	got, ttl, out := pod1.pingTTL("10.244.2.2", 100)
	crossed := hub.rxPackets("roam0") - before
	if got < 99 || ttl != 62 {
		t.Errorf("pod1 -> pod2 over the direct tunnel: %d/100 replies, ttl %d (want 62):\n%s", got, ttl, out)
	}
	// 200 packets went between the pods; only BGP keepalives and the
	// link probes of both hosts to the hub (4 a second each way per host on
	// the default profile, 16 a second into the hub's roam0) may cross.
	if crossed > 60 {
		t.Errorf("%d packets crossed the hub during 100 pings over the direct tunnel", crossed)
	}

	// Remove the direct tunnel and reload: the session with it ends, and the
	// best path goes back through the hub.
	for n := range direct {
		n.mustRun("cp", "/run/roam/roamd.yaml.orig", "/run/roam/roamd.yaml")
		n.signal(syscall.SIGHUP)
	}
	host1.waitInstalled("10.244.2.0/24", "hub", 30*time.Second)
	host2.waitInstalled("10.244.1.0/24", "hub", 10*time.Second)
	before = hub.rxPackets("roam0")
	got, ttl, out = pod1.pingTTL("10.244.2.2", 50)
	if got < 49 || ttl != 61 || hub.rxPackets("roam0")-before < 100 {
		t.Errorf("pod1 -> pod2 after removing the direct tunnel: %d/50 replies, ttl %d (want 61), %d packets at the hub:\n%s",
			got, ttl, hub.rxPackets("roam0")-before, out)
	}
}
