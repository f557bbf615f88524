package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// pingStats runs ping in node and returns the received count and mean RTT.
func pingStats(t testing.TB, file, node string, args ...string) (received int, avgMs float64) {
	t.Helper()
	r := labtest.Run(t, append([]string{"exec", "-t", file, "-n", node, "--", "ping", "-q"}, args...)...)
	if m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(r.Stdout); m != nil {
		received, _ = strconv.Atoi(m[1])
	}
	if m := regexp.MustCompile(`= [\d.]+/([\d.]+)/`).FindStringSubmatch(r.Stdout); m != nil {
		avgMs, _ = strconv.ParseFloat(m[1], 64)
	}
	return received, avgMs
}

// ifaceState is "up", or "admin-down", or "no-carrier" (admin up, peer gone).
func ifaceState(t *testing.T, file, node, iface string) string {
	t.Helper()
	for _, n := range inspectJSON(t, file) {
		if n.Name != node {
			continue
		}
		for _, i := range n.Interfaces {
			switch {
			case i.Name != iface:
			case !i.Admin:
				return "admin-down"
			case !i.Carrier:
				return "no-carrier"
			default:
				return i.State
			}
		}
	}
	t.Fatalf("no %s:%s in inspect", node, iface)
	return ""
}

// TestLinkCutRepair: in both modes a cut stops traffic and a repair brings it
// back; a carrier cut is seen as link down at both ends and the routes that
// went away with it come back on repair.
func TestLinkCutRepair(t *testing.T) {
	file := labtest.LabFile("pair")
	labtest.Deploy(t, file)
	labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.2")
	ping := []string{"-c", "3", "-i", "0.1", "-W", "1", "198.51.100.2"}
	if got, _ := pingStats(t, file, "a", ping...); got != 3 {
		t.Fatalf("before any cut: %d/3 replies", got)
	}
	for _, mode := range []string{"carrier", "drop"} {
		t.Run(mode, func(t *testing.T) {
			labtest.MustRun(t, "link", "set", "-t", file, "-n", "a", "-i", "eth1", "--down", "--mode", mode)
			if got, _ := pingStats(t, file, "a", ping...); got != 0 {
				t.Errorf("cut (%s): %d replies", mode, got)
			}
			wantA, wantB := "up", "up"
			if mode == "carrier" {
				// a loses carrier with eth1 still up; the far end is down.
				wantA, wantB = "no-carrier", "admin-down"
			}
			// The kernel's linkwatch publishes the peer's carrier loss within ~1 s.
			waitFor(t, 3*time.Second, "a:eth1 "+wantA+" and b:eth1 "+wantB, func() bool {
				return ifaceState(t, file, "a", "eth1") == wantA && ifaceState(t, file, "b", "eth1") == wantB
			})
			// The cut node cannot undo the cut from inside.
			labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "ip", "link", "set", "eth1", "up")
			if got, _ := pingStats(t, file, "a", ping...); got != 0 {
				t.Errorf("cut (%s) undone from inside the node: %d replies", mode, got)
			}
			if r := labtest.Run(t, "link", "set", "-t", file, "-n", "a", "-i", "eth1", "--down"); r.Code == 0 || !strings.Contains(r.Stderr, "already cut") {
				t.Errorf("second cut: exit %d %q", r.Code, r.Stderr)
			}
			labtest.MustRun(t, "link", "set", "-t", file, "-n", "a", "-i", "eth1", "--up")
			// Neighbour entries that failed during the cut are resolved again
			// by the kernel's own timers: wait for the first reply, bounded.
			start := time.Now()
			waitFor(t, 10*time.Second, "a reply after the repair", func() bool {
				got, _ := pingStats(t, file, "a", "-c", "1", "-W", "1", "198.51.100.2")
				return got == 1
			})
			t.Logf("repaired (%s): first reply after %v", mode, time.Since(start).Round(time.Millisecond))
			if got, _ := pingStats(t, file, "a", ping...); got != 3 {
				t.Errorf("repaired (%s): %d/3 replies", mode, got)
			}
			routes := labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "ip", "route")
			if !strings.Contains(routes, "192.0.2.0/24 via 198.51.100.2 dev eth1") {
				t.Errorf("repaired (%s): static route lost:\n%s", mode, routes)
			}
		})
	}
	if r := labtest.Run(t, "link", "set", "-t", file, "-n", "a", "-i", "eth9", "--down"); r.Code != 1 || !strings.Contains(r.Stderr, `no lab link on "eth9"`) {
		t.Errorf("cut of unknown interface: exit %d %q", r.Code, r.Stderr)
	}
}

// TestNetemCLI: an impairment set through the CLI is in force at once, shows
// in "netem show", changes while set, and clearing it leaves no hook behind.
func TestNetemCLI(t *testing.T) {
	file := labtest.LabFile("pair")
	labtest.Deploy(t, file)
	target := "198.51.100.2"
	_, base := pingStats(t, file, "a", "-c", "20", "-i", "0.01", target)

	labtest.MustRun(t, "tools", "netem", "set", "-t", file, "-n", "a", "-i", "eth1", "--delay", "50ms")
	got, avg := pingStats(t, file, "a", "-c", "100", "-i", "0.01", target)
	t.Logf("delay 50ms: %d/100 replies, mean RTT %.3f ms (baseline %.3f ms)", got, avg, base)
	// Proves the delay is applied; its accuracy is measured by make bench.
	if got != 100 || avg < 50+base-5 || avg > 50+base+5 {
		t.Errorf("delay 50ms: %d/100 replies, mean RTT %.3f ms, want 50 ms +- 5 over baseline %.3f", got, avg, base)
	}
	show := labtest.MustRun(t, "tools", "netem", "show", "-t", file, "-n", "a")
	if !regexp.MustCompile(`a\s+eth1\s+50ms\s`).MatchString(show) || !strings.Contains(show, "true") {
		t.Errorf("netem show does not list the running 50ms delay:\n%s", show)
	}

	labtest.MustRun(t, "tools", "netem", "set", "-t", file, "-n", "a", "-i", "eth1", "--loss", "20%")
	got, _ = pingStats(t, file, "a", "-c", "1000", "-i", "0.001", "-W", "1", target)
	loss := 100 * float64(1000-got) / 1000
	t.Logf("loss 20%%: measured %.1f%% over 1000 probes", loss)
	if loss < 15 || loss > 25 { // 3.95 sigma of a binomial(1000, 0.2): 8e-5 false failures
		t.Errorf("loss 20%%: measured %.1f%% over 1000 probes", loss)
	}

	labtest.MustRun(t, "tools", "netem", "set", "-t", file, "-n", "a", "-i", "eth1")
	qdiscs := labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "tc", "qdisc", "show", "dev", "eth1")
	links := labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "ip", "-o", "link")
	if strings.Contains(qdiscs, "clsact") || strings.Contains(links, ": emu") {
		t.Errorf("cleared, yet hooks remain:\n%s\n%s", qdiscs, links)
	}
	if got, avg = pingStats(t, file, "a", "-c", "20", "-i", "0.01", target); got != 20 || avg > base+2 {
		t.Errorf("cleared: %d/20 replies, mean RTT %.3f ms (baseline %.3f)", got, avg, base)
	}
	r := labtest.Run(t, "tools", "netem", "set", "-t", file, "-n", "a", "-i", "eth1", "--loss", "120")
	if r.Code != 2 || !strings.Contains(r.Stderr, "loss") {
		t.Errorf("--loss 120: exit %d %q; want 2 and a message naming loss", r.Code, r.Stderr)
	}
}

// TestBadInput: bad topology files and command lines give errors that name
// the problem, and nothing is deployed.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name, yaml string
		args       []string
		code       int
		want       string
	}{
		{name: "unknown kind", yaml: "name: bad\ntopology:\n  nodes:\n    a: {kind: ceos}\n", code: 1, want: `kind "ceos" is not supported`},
		{name: "unknown node in link", yaml: "name: bad\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [a:eth1, z:eth1]\n", code: 1, want: `unknown node "z"`},
		{name: "duplicate interface", yaml: "name: bad\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [a:eth1, b:eth2]\n", code: 1, want: "interface a:eth1 is already used"},
		{name: "bad yaml", yaml: "name: bad\ntopology: {nodes: [\n", code: 1, want: "bad YAML"},
		{name: "host network", yaml: "name: bad\ntopology:\n  nodes:\n    a: {kind: linux, network-mode: host}\n", code: 1, want: "network-mode"},
		{name: "no file", args: []string{"deploy"}, code: 2, want: "-t FILE is required"},
		{name: "unknown command", args: []string{"launch"}, code: 2, want: `unknown command "launch"`},
		{name: "exec without command", args: []string{"exec", "-n", "a"}, code: 2, want: "no command given"},
		{name: "cut without direction", args: []string{"link", "set", "-n", "a", "-i", "eth1"}, code: 2, want: "--down or --up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.yaml != "" {
				args = []string{"deploy", "-t", writeTopology(t, tt.yaml)}
			}
			r := labtest.Run(t, args...)
			if r.Code != tt.code || !strings.Contains(r.Stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.Code, r.Stderr, tt.code, tt.want)
			}
			if ns := labNamespaces(t, "bad"); len(ns) > 0 {
				t.Errorf("namespaces created: %v", ns)
			}
		})
	}
}
