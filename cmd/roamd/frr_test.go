package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// The frr lab (testbed/labs/frr.clab.yml): roamd on edge with one eBGP
// session to FRR 8 (Debian's frr: bgpd and zebra) on node frr, both on the
// underlay LAN.
const (
	frrEdgeUnderlay = "198.51.100.1"
	frrUnderlay     = "198.51.100.2"
	frrASN          = "65003"
	frrPodPrefix    = "10.244.1.0/24" // edge's pod prefix, the veth to pod1
	frrPod1         = "10.244.1.2"
	frrClientPrefix = "203.0.113.0/24" // FRR's client LAN, its network statement
	frrClient       = "203.0.113.2"
	frrService      = "10.244.96.0/24"
	frrVtySocket    = "/run/frr" // the node's private /run: vty sockets, pid files
	frrDaemons      = "/usr/lib/frr"
)

// frrLab is a deployed frr lab.
type frrLab struct {
	tb                      testing.TB
	file                    string
	edge, frr, client, pod1 ixNode
}

// frrDeploy deploys the frr lab (destroyed when the test ends). FRR comes
// from Debian's frr package, which make deps installs.
func frrDeploy(tb testing.TB) *frrLab {
	tb.Helper()
	labtest.RequireRoot(tb)
	for _, d := range []string{"zebra", "bgpd"} {
		if _, err := os.Stat(filepath.Join(frrDaemons, d)); err != nil {
			tb.Fatalf("FRR is not installed (%v): run make deps, which installs Debian's frr", err)
		}
	}
	labtest.BuildBinaries(tb)
	file := labtest.LabFile("frr")
	labtest.Deploy(tb, file)
	n := func(name string) ixNode { return ixNode{tb, file, name} }
	return &frrLab{tb: tb, file: file, edge: n("edge"), frr: n("frr"), client: n("client"), pod1: n("pod1")}
}

// in is l for a subtest: its helpers fail t, not the parent test.
func (l *frrLab) in(t testing.TB) *frrLab {
	c := *l
	c.tb = t
	for _, n := range []*ixNode{&c.edge, &c.frr, &c.client, &c.pod1} {
		n.tb = t
	}
	return &c
}

// vtysh runs FRR's shell in node frr with one -c per command and returns
// what it printed (with its exit code when not 0).
func (l *frrLab) vtysh(cmds ...string) string {
	l.tb.Helper()
	args := []string{"vtysh", "--vty_socket", frrVtySocket}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return l.frr.out(args...)
}

// configure applies FRR configuration lines (from `configure terminal` on)
// and fails the test when vtysh refuses one.
func (l *frrLab) configure(lines ...string) {
	l.tb.Helper()
	out := l.vtysh(append([]string{"configure terminal"}, lines...)...)
	if strings.TrimSpace(out) != "" {
		l.tb.Fatalf("vtysh configure %q: want no output; got\n%s", lines, out)
	}
}

// frrLogs is the tail of bgpd's log (the node's cmd runs bgpd in the
// foreground, logging to stdout).
func (l *frrLab) frrLogs() string { return ixTail(l.frr.cmdLog(), 20) }

// waitSession waits (bounded) until the edge-frr session is Established,
// seen from both ends.
func (l *frrLab) waitSession(limit time.Duration) {
	l.tb.Helper()
	ok, seen := ixPoll(limit, func() (bool, string) {
		nb := ixGoBGP(l.edge, "neighbor")
		fn := l.vtysh("show bgp neighbors " + frrEdgeUnderlay)
		ok := ixEstablished(nb, frrUnderlay) && strings.Contains(fn, "BGP state = Established")
		return ok, fmt.Sprintf("gobgp neighbor in edge (roamd):\n%s\nvtysh show bgp neighbors %s in frr:\n%s", nb, frrEdgeUnderlay, ixTail(fn, 15))
	})
	if !ok {
		l.tb.Fatalf("want the session edge-frr Established within %v; saw\n%s\nroamd's log:\n%s\nbgpd's log:\n%s",
			limit, seen, ixTail(l.edge.cmdLog(), 30), l.frrLogs())
	}
}

// frrRoute is bgpd's entry for prefix (`show bgp ipv4 unicast PREFIX`) and
// the frr node's kernel route to it.
func (l *frrLab) frrRoute(prefix string) (bgp, kernel string) {
	l.tb.Helper()
	return l.vtysh("show bgp ipv4 unicast " + prefix), ixKernelRoute(l.frr, prefix)
}

// waitFRRRoute waits until FRR has (want) or lacks (!want) prefix from roamd:
// best path in bgpd's table via edge, installed by zebra in the node's kernel
// (proto bgp).
func (l *frrLab) waitFRRRoute(prefix string, want bool, limit time.Duration) {
	l.tb.Helper()
	ok, seen := ixPoll(limit, func() (bool, string) {
		b, k := l.frrRoute(prefix)
		has := strings.Contains(b, "BGP routing table entry for "+prefix) && strings.Contains(b, frrEdgeUnderlay+" from "+frrEdgeUnderlay) &&
			strings.Contains(b, "best") && strings.Contains(k, "via "+frrEdgeUnderlay) && strings.Contains(k, "proto bgp")
		gone := strings.Contains(b, "Network not in table") && k == ""
		return (want && has) || (!want && gone), fmt.Sprintf("vtysh show bgp ipv4 unicast %s:\n%s\nip -4 route show exact %s in frr:\n%s", prefix, b, prefix, k)
	})
	if !ok {
		verb := "learn"
		if !want {
			verb = "no longer have"
		}
		l.tb.Fatalf("want FRR to %s %s via %s (bgpd's best path, zebra's kernel route) within %v; saw\n%s\nvtysh show bgp ipv4 unicast:\n%s\nbgpd's log:\n%s",
			verb, prefix, frrEdgeUnderlay, limit, seen, l.vtysh("show bgp ipv4 unicast"), l.frrLogs())
	}
}

// roamRoutes is `ip -4 route show proto 114` in edge: the routes roamd
// installed.
func (l *frrLab) roamRoutes() string {
	l.tb.Helper()
	return l.edge.mustRun("ip", "-4", "route", "show", "proto", "114")
}

// waitRoamRoute waits until edge's kernel has (want) or lacks (!want) prefix
// via FRR, installed by roamd.
func (l *frrLab) waitRoamRoute(prefix string, want bool, limit time.Duration) {
	l.tb.Helper()
	wantLine := prefix + " via " + frrUnderlay
	ok, seen := ixPoll(limit, func() (bool, string) {
		out := l.roamRoutes()
		return strings.Contains(out, wantLine) == want, out
	})
	if !ok {
		verb := "have"
		if !want {
			verb = "no longer have"
		}
		l.tb.Fatalf("want edge's kernel to %s %q (proto 114) within %v; `ip -4 route show proto 114` in edge:\n%s\nroamd's RIB (gobgp global rib in edge):\n%s\nFRR's table (vtysh show bgp ipv4 unicast):\n%s\nroamd's log:\n%s",
			verb, wantLine, limit, seen, ixGoBGP(l.edge, "global", "rib"), l.vtysh("show bgp ipv4 unicast"), ixTail(l.edge.cmdLog(), 30))
	}
}

// roamctl runs roamctl in edge with the lab's API token (roam/frr-token).
func (l *frrLab) roamctl(args ...string) string {
	l.tb.Helper()
	data, err := os.ReadFile(filepath.Join(labtest.RepoRoot(), "testbed", "labs", "roam", "frr-token"))
	if err != nil {
		l.tb.Fatal(err)
	}
	env := "ROAMCTL_TOKEN=" + strings.TrimSpace(string(data))
	return l.edge.mustRun(append([]string{"env", env, "/run/roam/bin/roamctl"}, args...)...)
}

// TestInteropFRR: roamd and FRR 8 (bgpd + zebra) on the same LAN. FRR learns
// edge's pod prefix and a service prefix added and removed at run time, and
// zebra installs them; roamd learns FRR's client LAN, installs it in the
// kernel and removes it when FRR withdraws it; a client behind FRR pings a
// pod behind roamd.
func TestInteropFRR(t *testing.T) {
	l := frrDeploy(t)
	l.waitSession(20 * time.Second)

	// FRR's daemons run inside node frr, with their pid files in its own /run.
	for _, d := range []string{"zebra", "bgpd"} {
		pid := pidOf(l.file, "frr", d)
		file := l.frr.out("cat", frrVtySocket+"/"+d+".pid")
		if pid == 0 || strings.TrimSpace(file) != strconv.Itoa(pid) {
			t.Errorf("want %s running in node frr's namespace with its pid in %s/%s.pid there; pid in the node %d, pid file %q", d, frrVtySocket, d, pid, file)
		}
	}

	// What FRR learned from roamd, in bgpd's table and in zebra's kernel.
	l.waitFRRRoute(frrPodPrefix, true, 10*time.Second)
	if b, _ := l.frrRoute(frrPodPrefix); !strings.Contains(b, "4200000001") {
		t.Errorf("FRR's route to %s should come from roamd (AS path 4200000001):\n%s", frrPodPrefix, b)
	}
	if n := l.vtysh("show bgp neighbors " + frrEdgeUnderlay); !strings.Contains(n, "Graceful Restart Capability: advertised and received") {
		t.Errorf("FRR and roamd did not both announce graceful restart (want \"Graceful Restart Capability: advertised and received\"):\n%s", n)
	}

	// What roamd learned from FRR, in edge's kernel.
	l.waitRoamRoute(frrClientPrefix, true, 10*time.Second)
	if line := ixRouteLine(l.roamRoutes(), frrClientPrefix); !strings.Contains(line, "dev eth1") {
		t.Errorf("edge's route to %s should leave through eth1 (the underlay): %q", frrClientPrefix, line)
	}
	if rib := ixGoBGP(l.edge, "global", "rib"); !strings.Contains(ixRouteLine(rib, frrClientPrefix), frrASN) {
		t.Errorf("roamd's RIB: want %s with AS path %s; got\n%s", frrClientPrefix, frrASN, rib)
	}

	t.Run("data path client to pod1", func(t *testing.T) {
		l := l.in(t)
		ok, _ := ixPoll(10*time.Second, func() (bool, string) {
			return l.client.run("ping", "-c", "1", "-W", "1", frrPod1).Code == 0, ""
		})
		if !ok {
			t.Fatalf("want a ping reply from client %s to pod1 %s within 10s; none.\nip route in edge:\n%s\nip route in frr:\n%s",
				frrClient, frrPod1, l.edge.out("ip", "-4", "route"), l.frr.out("ip", "-4", "route"))
		}
		out := l.client.out("ping", "-c", "5", "-i", "0.2", "-W", "1", frrPod1)
		if !strings.Contains(out, " 5 received") || !strings.Contains(out, "ttl=62") {
			t.Errorf("ping from client %s to pod1 %s over frr and edge: want 5 replies with ttl=62 (two routers); got\n%s", frrClient, frrPod1, out)
		}
	})

	t.Run("service prefix at run time", func(t *testing.T) {
		l := l.in(t)
		l.roamctl("service", "add", frrService)
		l.waitFRRRoute(frrService, true, 10*time.Second)
		l.roamctl("service", "del", frrService)
		l.waitFRRRoute(frrService, false, 10*time.Second)
		if b, k := l.frrRoute(frrPodPrefix); !strings.Contains(k, "via "+frrEdgeUnderlay) {
			t.Errorf("removing service %s also took the pod prefix %s away from FRR:\n%s\nkernel: %q", frrService, frrPodPrefix, b, k)
		}
	})

	t.Run("FRR withdraws", func(t *testing.T) {
		l := l.in(t)
		af := []string{"router bgp " + frrASN, "address-family ipv4 unicast"}
		l.configure(append(af, "no network "+frrClientPrefix)...)
		l.waitRoamRoute(frrClientPrefix, false, 10*time.Second)
		if rib := ixGoBGP(l.edge, "global", "rib"); ixRouteLine(rib, frrClientPrefix) != "" {
			t.Errorf("roamd's RIB still has %s after FRR withdrew it:\n%s", frrClientPrefix, rib)
		}
		l.configure(append(af, "network "+frrClientPrefix)...)
		l.waitRoamRoute(frrClientPrefix, true, 10*time.Second)
	})
}
