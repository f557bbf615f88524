package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// pathJSON is one entry of roamctl paths -o json.
type pathJSON struct {
	Name            string `json:"name"`
	Type            string `json:"type"`
	IceState        string `json:"ice_state"`
	Endpoint        string `json:"endpoint"`
	LocalCandidate  string `json:"local_candidate"`
	RemoteCandidate string `json:"remote_candidate"`
	Since           string `json:"since"`
	Restarts        int    `json:"restarts,string"`
	LastError       string `json:"last_error"`
	Via             string `json:"via"`
}

// path is n's path to peer (roamctl paths -o json); zero if not listed.
func (n node) path(peer string) pathJSON {
	n.t.Helper()
	var r struct {
		Paths []pathJSON `json:"paths"`
	}
	res := n.run("/run/roam/bin/roamctl", "paths", "-o", "json")
	if res.Code != 0 {
		return pathJSON{}
	}
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		n.t.Fatalf("roamctl paths -o json in %s: %v\n%s", n.name, err, res.Stdout)
	}
	for _, p := range r.Paths {
		if p.Name == peer {
			return p
		}
	}
	return pathJSON{}
}

// setNAT makes the NAT router n endpoint-independent (plain masquerade) or
// symmetric (a random port per destination), and flushes its conntrack
// table so that every flow is mapped again under the new rule.
func (n node) setNAT(symmetric bool) {
	n.t.Helper()
	rule := "masquerade"
	if symmetric {
		rule = "masquerade fully-random"
	}
	n.mustRun("nft", "flush chain ip nat postrouting")
	n.mustRun("sh", "-c", "nft add rule ip nat postrouting oifname eth1 "+rule)
	n.run("conntrack", "-F") // exits 1 when the table was empty already
}

// TestICELab: two hosts, each behind its own NAT, with tunnels to the hub
// only in their configuration. The hub's directory names each to the
// other; ICE over WireGuard's port (server-reflexive candidates from the
// hub's STUN, signalling sealed and relayed by the hub) finds a direct
// path; a BGP session runs over it and the pods' traffic stops crossing
// the hub, and stays off it. When one NAT turns symmetric the direct path
// fails and traffic goes through the hub; when it is endpoint-independent
// again, the path comes back within the retry backoff.
func TestICELab(t *testing.T) {
	labtest.BuildBinaries(t)
	file := labtest.LabFile("ice")
	start := time.Now()
	labtest.Deploy(t, file)
	host1, host2, hub := node{t, file, "host1"}, node{t, file, "host2"}, node{t, file, "hub"}
	pod1, nat2 := node{t, file, "pod1"}, node{t, file, "nat2"}

	host1.waitInstalled("10.244.2.0/24", "host2", 30*time.Second)
	host2.waitInstalled("10.244.1.0/24", "host1", 10*time.Second)
	t.Logf("direct path with its routes installed %v after the deploy", time.Since(start).Round(time.Millisecond))
	p := host1.path("host2")
	if p.Type != "direct" || p.IceState != "connected" || !strings.HasPrefix(p.RemoteCandidate, "srflx 203.0.113.12:") {
		t.Errorf("host1's path to host2: %+v: want direct, connected, to nat2's public address (srflx)", p)
	}
	if ep := host1.path("host2").Endpoint; !strings.HasPrefix(ep, "203.0.113.12:") {
		t.Errorf("host1's WireGuard endpoint of host2 is %q: want nat2's public address", ep)
	}
	// 200 pings 10 ms apart: through the hub they would be 400 packets into
	// its roam0. What crosses it anyway (probes, BGP keepalives) is counted
	// over as long a quiet time just after.
	before, t0 := hub.rxPackets("roam0"), time.Now()
	got, ttl, out := pod1.pingTTL("10.244.2.2", 200)
	busy, took := hub.rxPackets("roam0")-before, time.Since(t0)
	before = hub.rxPackets("roam0")
	time.Sleep(took)
	quiet := hub.rxPackets("roam0") - before
	if got < 199 || ttl != 62 {
		t.Errorf("pod1 -> pod2 over the direct path: %d/200 replies, ttl %d (want 62):\n%s", got, ttl, out)
	}
	if busy > quiet+40 {
		t.Errorf("%d packets crossed the hub during 200 pings over the direct path, %d in as long without them", busy, quiet)
	}
	t.Logf("200 pings pod1 -> pod2 in %v: %d packets crossed the hub, %d in as long without pings", took.Round(time.Millisecond), busy, quiet)

	// It keeps the path: no restart, no change in 20 s.
	first := host1.path("host2")
	time.Sleep(20 * time.Second)
	// Kept: the same pair, no new session. (Its state may have been
	// "disconnected" for a moment when ICE keepalives were late on a
	// loaded machine; WireGuard used the pair all along.)
	if p := host1.path("host2"); p.Restarts != first.Restarts || p.RemoteCandidate != first.RemoteCandidate ||
		p.Type != "direct" || p.IceState != "connected" {
		t.Errorf("after 20 s the path to host2 is %+v, was %+v: want it kept", p, first)
	} else if p.Since != first.Since {
		t.Logf("the path's state changed and came back within the 20 s (since %s, was %s)", p.Since, first.Since)
	}

	t.Run("symmetric NAT", func(t *testing.T) {
		nat2.setNAT(true)
		cut := time.Now()
		host1.waitInstalled("10.244.2.0/24", "hub", 20*time.Second)
		t.Logf("nat2 symmetric: host1 routes pod2 through the hub after %v", time.Since(cut).Round(time.Millisecond))
		if got, ttl, out := pod1.pingTTL("10.244.2.2", 50); got < 49 || ttl != 61 {
			t.Errorf("pod1 -> pod2 through the hub: %d/50 replies, ttl %d (want 61):\n%s", got, ttl, out)
		}
		// ICE keeps failing while nat2 is symmetric.
		time.Sleep(5 * time.Second)
		if p := host1.path("host2"); p.Type != "hub" || p.IceState == "connected" || p.Via != "hub" {
			t.Errorf("host1's path to host2 behind a symmetric NAT: %+v: want through the hub, not connected", p)
		}
		nat2.setNAT(false)
		fixed := time.Now()
		host1.waitInstalled("10.244.2.0/24", "host2", 60*time.Second)
		t.Logf("nat2 endpoint-independent again: direct path and routes back after %v", time.Since(fixed).Round(time.Millisecond))
		if got, ttl, out := pod1.pingTTL("10.244.2.2", 50); got < 49 || ttl != 62 {
			t.Errorf("pod1 -> pod2 direct again: %d/50 replies, ttl %d (want 62):\n%s", got, ttl, out)
		}
	})
}
