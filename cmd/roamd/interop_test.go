package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/roamnet/roam/testbed/labtest"
)

// The interop lab (testbed/labs/interop.clab.yml): roamd on edge with eBGP
// sessions to BIRD 2 (bird) and gobgpd (gobgp) on the underlay LAN.
const (
	ixEdgeUnderlay  = "198.51.100.1"
	ixBirdUnderlay  = "198.51.100.2"
	ixGoBGPUnderlay = "198.51.100.3"
	ixPodPrefix     = "10.244.1.0/24" // edge's pod prefix, the veth to pod1
	ixPod1          = "10.244.1.2"
	ixClientPrefix  = "203.0.113.0/24" // BIRD's client LAN
	ixClient        = "203.0.113.2"
	ixEdgeConfig    = "/run/roam/etc/interop-edge.yaml"
	ixLimitsConfig  = "/run/roam/etc/interop-edge-limits.yaml"
	ixBirdSock      = "/run/bird.ctl"
	ixProtoRoam     = 114 // roamd's kernel routes
	ixProtoBird     = 12  // BIRD's (RTPROT_BIRD)
)

// ixNode runs commands in one node of the interop lab.
type ixNode struct {
	tb   testing.TB
	file string
	name string
}

func (n ixNode) run(args ...string) labtest.Result {
	n.tb.Helper()
	return labtest.Run(n.tb, append([]string{"exec", "-t", n.file, "-n", n.name, "--"}, args...)...)
}

func (n ixNode) mustRun(args ...string) string {
	n.tb.Helper()
	return labtest.MustRun(n.tb, append([]string{"exec", "-t", n.file, "-n", n.name, "--"}, args...)...)
}

// out is what a command printed, stdout and stderr, whatever its exit code.
func (n ixNode) out(args ...string) string {
	n.tb.Helper()
	r := n.run(args...)
	s := r.Stdout + r.Stderr
	if r.Code != 0 {
		s += fmt.Sprintf("(exit %d)\n", r.Code)
	}
	return s
}

func (n ixNode) netns() string {
	return "clab-" + strings.TrimSuffix(filepath.Base(n.file), ".clab.yml") + "-" + n.name
}

// cmdLog is the output of the node's cmd (the roamd, bird or gobgpd the lab
// started).
func (n ixNode) cmdLog() string {
	data, _ := os.ReadFile(filepath.Join("/run/roamlab", strings.TrimSuffix(filepath.Base(n.file), ".clab.yml"), n.name, "cmd.log"))
	return string(data)
}

// ixLab is a deployed interop lab.
type ixLab struct {
	tb                              testing.TB
	file                            string
	edge, bird, gobgp, client, pod1 ixNode
}

// ixDeploy deploys the interop lab (destroyed when the test ends).
func ixDeploy(tb testing.TB) *ixLab {
	tb.Helper()
	labtest.BuildBinaries(tb)
	file := labtest.LabFile("interop")
	labtest.Deploy(tb, file)
	n := func(name string) ixNode { return ixNode{tb, file, name} }
	return &ixLab{tb: tb, file: file, edge: n("edge"), bird: n("bird"), gobgp: n("gobgp"), client: n("client"), pod1: n("pod1")}
}

// in is l for a subtest: its helpers fail t, not the parent test.
func (l *ixLab) in(t testing.TB) *ixLab {
	c := *l
	c.tb = t
	for _, n := range []*ixNode{&c.edge, &c.bird, &c.gobgp, &c.client, &c.pod1} {
		n.tb = t
	}
	return &c
}

// ixPoll calls check every 100 ms until it reports ok or limit has passed, and
// returns whether it did and what check last saw.
func ixPoll(limit time.Duration, check func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(limit)
	for {
		ok, seen := check()
		if ok || time.Now().After(deadline) {
			return ok, seen
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *ixLab) birdc(args ...string) string {
	l.tb.Helper()
	return l.bird.out(append([]string{"birdc", "-s", ixBirdSock}, args...)...)
}

// ixGoBGP runs the stock gobgp CLI in n against the gRPC API on the node's
// 127.0.0.1:50051: roamd's in edge, gobgpd's in gobgp.
func ixGoBGP(n ixNode, args ...string) string {
	n.tb.Helper()
	return n.out(append([]string{"/run/roam/bin/gobgp"}, args...)...)
}

// ixEstablished reports whether the `gobgp neighbor` table shows the
// neighbour addr in state Established.
func ixEstablished(neighbors, addr string) bool {
	for _, line := range strings.Split(neighbors, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == addr && strings.Contains(line, "Establ") {
			return true
		}
	}
	return false
}

// ixBirdEstablished reports whether `birdc show protocols` shows proto
// Established.
func ixBirdEstablished(protocols, proto string) bool {
	for _, line := range strings.Split(protocols, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == proto && strings.Contains(line, "Established") {
			return true
		}
	}
	return false
}

// waitSessions waits (bounded) until roamd's sessions with BIRD and gobgpd
// and BIRD's with gobgpd are Established, seen from both ends.
func (l *ixLab) waitSessions(limit time.Duration) {
	l.tb.Helper()
	ok, seen := ixPoll(limit, func() (bool, string) {
		nb := ixGoBGP(l.edge, "neighbor")
		pr := l.birdc("show", "protocols")
		gb := ixGoBGP(l.gobgp, "neighbor")
		ok := ixEstablished(nb, ixBirdUnderlay) && ixEstablished(nb, ixGoBGPUnderlay) &&
			ixBirdEstablished(pr, "edge") && ixBirdEstablished(pr, "gobgpd") &&
			ixEstablished(gb, ixEdgeUnderlay) && ixEstablished(gb, ixBirdUnderlay)
		return ok, fmt.Sprintf("gobgp neighbor in edge (roamd):\n%s\nbirdc show protocols:\n%s\ngobgp neighbor in gobgp (gobgpd):\n%s", nb, pr, gb)
	})
	if !ok {
		l.tb.Fatalf("want the sessions edge-bird, edge-gobgp and bird-gobgp Established within %v; saw\n%s\nroamd's log:\n%s", limit, seen, ixTail(l.roamdLogs(), 30))
	}
}

// ixRouteLine is the line of a route listing that starts with prefix, or "".
func ixRouteLine(listing, prefix string) string {
	for _, line := range strings.Split(listing, "\n") {
		// gobgp marks best paths "*>" and stale ones "S"; birdc and ip
		// print the prefix first.
		f := strings.Fields(strings.TrimLeftFunc(line, func(r rune) bool { return !unicode.IsDigit(r) }))
		if len(f) > 0 && f[0] == prefix {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// birdRoute is BIRD's route to prefix as `birdc show route PREFIX` prints it
// (the prefix line and its next hop lines), or "" when BIRD has none.
func (l *ixLab) birdRoute(prefix string) string {
	out := l.birdc("show", "route", prefix)
	if !strings.Contains(out, prefix) {
		return ""
	}
	return out
}

// ixKernelRoute is `ip -4 route show exact PREFIX` in n.
func ixKernelRoute(n ixNode, prefix string) string {
	n.tb.Helper()
	return strings.TrimSpace(n.mustRun("ip", "-4", "route", "show", "exact", prefix))
}

// roamRoutes is `ip -4 route show proto 114` in edge: the routes roamd
// installed.
func (l *ixLab) roamRoutes() string {
	l.tb.Helper()
	return l.edge.mustRun("ip", "-4", "route", "show", "proto", "114")
}

// waitRoamRoute waits until edge's kernel has (want) or lacks (!want) prefix
// via nextHop, installed by roamd.
func (l *ixLab) waitRoamRoute(prefix, nextHop string, want bool, limit time.Duration) {
	l.tb.Helper()
	wantLine := prefix + " via " + nextHop
	ok, seen := ixPoll(limit, func() (bool, string) {
		out := l.roamRoutes()
		return strings.Contains(out, wantLine) == want, out
	})
	if !ok {
		verb := "have"
		if !want {
			verb = "no longer have"
		}
		l.tb.Fatalf("want edge's kernel to %s %q (proto 114) within %v; `ip -4 route show proto 114` in edge:\n%s\nroamd's RIB (gobgp global rib in edge):\n%s\nroamd's log:\n%s",
			verb, wantLine, limit, seen, ixGoBGP(l.edge, "global", "rib"), ixTail(l.roamdLogs(), 30))
	}
}

// waitBirdRoute waits until BIRD has (want) or lacks (!want) prefix via
// nextHop, in its table and in the bird node's kernel.
func (l *ixLab) waitBirdRoute(prefix, nextHop string, want bool, limit time.Duration) {
	l.tb.Helper()
	ok, seen := ixPoll(limit, func() (bool, string) {
		b, k := l.birdRoute(prefix), ixKernelRoute(l.bird, prefix)
		has := strings.Contains(b, "via "+nextHop) && strings.Contains(k, "via "+nextHop) && strings.Contains(k, "proto bird")
		gone := b == "" && k == ""
		return (want && has) || (!want && gone), fmt.Sprintf("birdc show route %s:\n%s\nip -4 route show exact %s in bird:\n%s", prefix, b, prefix, k)
	})
	if !ok {
		verb := "learn"
		if !want {
			verb = "no longer have"
		}
		l.tb.Fatalf("want BIRD to %s %s via %s (its table and its kernel) within %v; saw\n%s\nbirdc show protocols all edge:\n%s",
			verb, prefix, nextHop, limit, seen, l.birdc("show", "protocols", "all", "edge"))
	}
}

// ixToken is the interop lab's REST API token (roam/interop-token).
func ixToken(tb testing.TB) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(labtest.RepoRoot(), "testbed", "labs", "roam", "interop-token"))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// roamctl runs roamctl in edge with the lab's API token.
func (l *ixLab) roamctl(args ...string) string {
	l.tb.Helper()
	return l.edge.mustRun(append([]string{"env", "ROAMCTL_TOKEN=" + ixToken(l.tb), "/run/roam/bin/roamctl"}, args...)...)
}

// roamdLogs is everything roamd logged in edge: the lab's cmd.log and the
// log of a roamd a test restarted (startRoamd's /run/roam/roamd.log).
func (l *ixLab) roamdLogs() string {
	l.tb.Helper()
	return l.edge.cmdLog() + l.edge.run("cat", "/run/roam/roamd.log").Stdout
}

// ixLogLines are the lines of log that match every one of the patterns
// (regular expressions, case-insensitive).
func ixLogLines(log string, patterns ...string) []string {
	var out []string
lines:
	for _, line := range strings.Split(log, "\n") {
		for _, p := range patterns {
			if !regexp.MustCompile("(?i)" + p).MatchString(line) {
				continue lines
			}
		}
		out = append(out, line)
	}
	return out
}

func ixTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitPing waits until from gets a reply from addr.
func (l *ixLab) waitPing(from ixNode, addr string, limit time.Duration) {
	l.tb.Helper()
	ok, _ := ixPoll(limit, func() (bool, string) {
		return from.run("ping", "-c", "1", "-W", "1", addr).Code == 0, ""
	})
	if !ok {
		l.tb.Fatalf("want a ping reply from %s to %s within %v; none.\nip route in edge:\n%s\nip route in bird:\n%s\nroamd's log:\n%s",
			from.name, addr, limit, l.edge.out("ip", "-4", "route"), l.bird.out("ip", "-4", "route"), ixTail(l.roamdLogs(), 30))
	}
}

// restartRoamd stops edge's roamd with SIGTERM and starts it again with
// config, as the lab's cmd does (output to /run/roam/roamd.log in edge).
func (l *ixLab) restartRoamd(t *testing.T, config string) {
	t.Helper()
	pid := roamdPID(l.file, "edge")
	if pid == 0 {
		t.Fatalf("no roamd runs in edge\n%s", ixTail(l.roamdLogs(), 30))
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, 10*time.Second)
	l.startRoamd(config)
}

func (l *ixLab) startRoamd(config string) {
	l.tb.Helper()
	l.edge.mustRun("setsid", "sh", "-c", "/run/roam/bin/roamd --config "+config+" >>/run/roam/roamd.log 2>&1 &")
}

// TestInteropBIRD: roamd and BIRD 2 on the same LAN. BIRD learns edge's pod
// prefix and a service prefix added and removed at run time; roamd learns
// BIRD's client LAN, installs it in the kernel and removes it when BIRD
// withdraws it; a client behind BIRD pings a pod behind roamd.
func TestInteropBIRD(t *testing.T) {
	l := ixDeploy(t)
	l.waitSessions(20 * time.Second)

	// What BIRD learned from roamd, in its table and in its kernel.
	l.waitBirdRoute(ixPodPrefix, ixEdgeUnderlay, true, 10*time.Second)
	if r := l.birdRoute(ixPodPrefix); !strings.Contains(r, "AS4200000001") || !strings.Contains(r, "[edge") {
		t.Errorf("BIRD's route to %s should come from roamd (protocol edge, AS 4200000001):\n%s", ixPodPrefix, r)
	}

	// What roamd learned from BIRD, in edge's kernel.
	l.waitRoamRoute(ixClientPrefix, ixBirdUnderlay, true, 10*time.Second)
	if line := ixRouteLine(l.roamRoutes(), ixClientPrefix); !strings.Contains(line, "dev eth1") {
		t.Errorf("edge's route to %s should leave through eth1 (the underlay): %q", ixClientPrefix, line)
	}

	t.Run("data path client to pod1", func(t *testing.T) {
		l := l.in(t)
		l.waitPing(l.client, ixPod1, 10*time.Second)
		out := l.client.out("ping", "-c", "5", "-i", "0.2", "-W", "1", ixPod1)
		if !strings.Contains(out, " 5 received") || !strings.Contains(out, "ttl=62") {
			t.Errorf("ping from client %s to pod1 %s over bird and edge: want 5 replies with ttl=62 (two routers); got\n%s", ixClient, ixPod1, out)
		}
	})

	t.Run("service prefix at run time", func(t *testing.T) {
		l := l.in(t)
		const svc = "10.96.0.0/24"
		l.roamctl("service", "add", svc)
		l.waitBirdRoute(svc, ixEdgeUnderlay, true, 10*time.Second)
		if list := l.roamctl("service", "list"); !strings.Contains(list, svc) {
			t.Errorf("roamctl service list lacks %s after service add:\n%s", svc, list)
		}
		l.roamctl("service", "del", svc)
		l.waitBirdRoute(svc, ixEdgeUnderlay, false, 10*time.Second)
		if r := l.birdRoute(ixPodPrefix); r == "" {
			t.Errorf("removing service %s also took the pod prefix %s away from BIRD", svc, ixPodPrefix)
		}
	})

	t.Run("BIRD withdraws", func(t *testing.T) {
		l := l.in(t)
		l.birdc("disable", "client_lan")
		l.waitRoamRoute(ixClientPrefix, ixBirdUnderlay, false, 10*time.Second)
		if rib := ixGoBGP(l.edge, "global", "rib"); ixRouteLine(rib, ixClientPrefix) != "" {
			t.Errorf("roamd's RIB still has %s after BIRD withdrew it:\n%s", ixClientPrefix, rib)
		}
		l.birdc("enable", "client_lan")
		l.waitRoamRoute(ixClientPrefix, ixBirdUnderlay, true, 10*time.Second)
	})
}

// TestInteropGoBGP: roamd and gobgpd v3.37.0. gobgpd learns edge's pod and
// service prefixes; roamd installs a prefix gobgpd originates at run time and
// removes it when gobgpd withdraws it.
func TestInteropGoBGP(t *testing.T) {
	l := ixDeploy(t)
	l.waitSessions(20 * time.Second)
	const learned = "10.98.0.0/24"

	ok, seen := ixPoll(10*time.Second, func() (bool, string) {
		rib := ixGoBGP(l.gobgp, "global", "rib")
		return strings.Contains(ixRouteLine(rib, ixPodPrefix), ixEdgeUnderlay), rib
	})
	if !ok {
		t.Fatalf("want gobgpd to learn %s via %s within 10s; gobgp global rib in gobgp:\n%s", ixPodPrefix, ixEdgeUnderlay, seen)
	}

	ixGoBGP(l.gobgp, "global", "rib", "add", learned)
	l.waitRoamRoute(learned, ixGoBGPUnderlay, true, 10*time.Second)
	if rib := ixGoBGP(l.edge, "global", "rib"); !strings.Contains(ixRouteLine(rib, learned), "65002") {
		t.Errorf("roamd's RIB: want %s with AS path 65002; got\n%s", learned, rib)
	}

	t.Run("service prefix at run time", func(t *testing.T) {
		l := l.in(t)
		const svc = "10.96.1.0/24"
		l.roamctl("service", "add", svc)
		ok, seen := ixPoll(10*time.Second, func() (bool, string) {
			rib := ixGoBGP(l.gobgp, "global", "rib")
			return strings.Contains(ixRouteLine(rib, svc), ixEdgeUnderlay), rib
		})
		if !ok {
			t.Fatalf("want gobgpd to learn service %s via %s within 10s; gobgp global rib in gobgp:\n%s", svc, ixEdgeUnderlay, seen)
		}
		l.roamctl("service", "del", svc)
		ok, seen = ixPoll(10*time.Second, func() (bool, string) {
			rib := ixGoBGP(l.gobgp, "global", "rib")
			return ixRouteLine(rib, svc) == "", rib
		})
		if !ok {
			t.Fatalf("want gobgpd to lose service %s within 10s of service del; gobgp global rib in gobgp:\n%s", svc, seen)
		}
	})

	t.Run("gobgpd withdraws", func(t *testing.T) {
		l := l.in(t)
		ixGoBGP(l.gobgp, "global", "rib", "del", learned)
		l.waitRoamRoute(learned, ixGoBGPUnderlay, false, 10*time.Second)
	})
}

// TestInteropBadInput: what an external router must not be able to do to
// roamd: announce another node's prefix (inside internal_prefixes), a
// default route, more prefixes than its max_prefixes; and nobody may add a
// service without the API token.
func TestInteropBadInput(t *testing.T) {
	l := ixDeploy(t)
	l.waitSessions(20 * time.Second)
	l.waitRoamRoute(ixClientPrefix, ixBirdUnderlay, true, 10*time.Second) // BIRD's updates flow

	// rejected: BIRD announces prefix (its static protocol proto); it must
	// reach roamd (its Adj-RIB-In) and go no further.
	rejected := func(t *testing.T, proto, prefix string) {
		t.Helper()
		l := l.in(t)
		l.birdc("enable", proto)
		t.Cleanup(func() { l.birdc("disable", proto) })
		ok, seen := ixPoll(10*time.Second, func() (bool, string) {
			in := ixGoBGP(l.edge, "neighbor", ixBirdUnderlay, "adj-in")
			return ixRouteLine(in, prefix) != "" || len(ixLogLines(l.roamdLogs(), regexp.QuoteMeta(prefix))) > 0, in
		})
		if !ok {
			t.Fatalf("BIRD's %s never reached roamd (not in its Adj-RIB-In, not in its log) within 10s; gobgp neighbor %s adj-in in edge:\n%s\nbirdc show route export edge:\n%s",
				prefix, ixBirdUnderlay, seen, l.birdc("show", "route", "export", "edge"))
		}
		time.Sleep(500 * time.Millisecond) // the FIB sync runs after the RIB: give a wrong install time to show
		if rib := ixGoBGP(l.edge, "global", "rib"); ixRouteLine(rib, prefix) != "" {
			t.Errorf("roamd accepted %s from BIRD into its RIB:\n%s", prefix, rib)
		}
		if k := ixKernelRoute(l.edge, prefix); k != "" {
			t.Errorf("edge's kernel has a route to %s: %q", prefix, k)
		}
	}

	t.Run("hijack of an internal prefix", func(t *testing.T) {
		l := l.in(t)
		const hijack = "10.244.2.0/24" // another roam node's pod prefix
		rejected(t, "hijack", hijack)
		ok, _ := ixPoll(5*time.Second, func() (bool, string) {
			return len(ixLogLines(l.roamdLogs(), regexp.QuoteMeta(hijack))) > 0, ""
		})
		if !ok {
			t.Errorf("roamd logged no line naming the rejected %s; its log:\n%s", hijack, ixTail(l.roamdLogs(), 30))
		} else {
			t.Logf("roamd: %s", ixLogLines(l.roamdLogs(), regexp.QuoteMeta(hijack))[0])
		}
	})

	t.Run("default route", func(t *testing.T) {
		l := l.in(t)
		rejected(t, "default_route", "0.0.0.0/0")
		if k := l.edge.mustRun("ip", "-4", "route", "show", "default"); strings.TrimSpace(k) != "" {
			t.Errorf("edge has a default route: %q", k)
		}
	})

	t.Run("service without token", func(t *testing.T) {
		l := l.in(t)
		const svc, after = "10.96.9.0/24", "10.96.10.0/24"
		cl := labtest.HTTPClient(l.edge.netns())
		for _, auth := range []string{"", "Bearer wrong-token"} {
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:7470/v1/services", strings.NewReader(`{"prefix":"`+svc+`"}`))
			req.Header.Set("Content-Type", "application/json")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatalf("POST /v1/services in edge: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST /v1/services with Authorization %q: status %d, want 401; body %s", auth, resp.StatusCode, body)
			}
		}
		if r := l.edge.run("/run/roam/bin/roamctl", "service", "add", svc); r.Code == 0 {
			t.Errorf("roamctl service add without a token succeeded:\n%s", r.Stdout)
		}
		// Updates to BIRD keep their order: once a later, authorised service
		// has arrived, the refused one would have too.
		l.roamctl("service", "add", after)
		l.waitBirdRoute(after, ixEdgeUnderlay, true, 10*time.Second)
		if r := l.birdRoute(svc); r != "" {
			t.Errorf("an unauthenticated POST /v1/services got %s announced to BIRD:\n%s", svc, r)
		}
		if rib := ixGoBGP(l.edge, "global", "rib"); ixRouteLine(rib, svc) != "" {
			t.Errorf("an unauthenticated POST /v1/services put %s in roamd's RIB:\n%s", svc, rib)
		}
	})

	t.Run("more prefixes than max_prefixes", func(t *testing.T) {
		l := l.in(t)
		// roamd again, now accepting at most 20 prefixes from gobgpd.
		l.restartRoamd(t, ixLimitsConfig)
		l.waitSessions(20 * time.Second)
		const limit, sent = 20, 30
		gobgpdLogBefore := len(l.gobgp.cmdLog())
		within := netip.MustParsePrefix("10.98.0.0/16")
		prefixes := ixPrefixes(netip.MustParsePrefix("10.98.100.0/24"), sent, within)
		c := ixGoBGPD(t, l.gobgp.netns())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// One stream message: gobgpd sends the 30 at once (in one UPDATE or
		// a few, as its send loop happens to batch them).
		if err := ixAddPaths(ctx, c, ixPaths(prefixes, ixGoBGPUnderlay, false), sent); err != nil {
			t.Fatalf("gobgpd AddPathStream: %v", err)
		}
		most := 0 // most routes from gobgpd in edge's kernel at any sample
		teardown := regexp.MustCompile(`(?i)"Key":"` + regexp.QuoteMeta(ixEdgeUnderlay) + `".*(maximum number of prefixes|cease)`)
		deadline := time.Now().Add(10 * time.Second)
		seenDown := false
		for time.Now().Before(deadline) && !seenDown {
			n, err := ixCountRoutes(l.edge.netns(), ixProtoRoam, within)
			if err != nil {
				t.Fatal(err)
			}
			most = max(most, n)
			seenDown = teardown.MatchString(l.gobgp.cmdLog()[gobgpdLogBefore:])
			time.Sleep(20 * time.Millisecond)
		}
		for range 25 { // and 0.5 s more: nothing may be installed late
			n, _ := ixCountRoutes(l.edge.netns(), ixProtoRoam, within)
			most = max(most, n)
			time.Sleep(20 * time.Millisecond)
		}
		gobgpdLog := l.gobgp.cmdLog()[gobgpdLogBefore:]
		if !seenDown {
			t.Errorf("after gobgpd announced %d prefixes (max_prefixes %d), want roamd to tear the session down (gobgpd sees a Cease notification) within 10s; gobgpd's log since:\n%s\ngobgp neighbor in edge:\n%s",
				sent, limit, ixTail(gobgpdLog, 20), ixGoBGP(l.edge, "neighbor"))
		}
		if most > limit {
			t.Errorf("edge's kernel held %d routes from gobgpd at one point; max_prefixes is %d. roamd's log:\n%s", most, limit, ixTail(l.roamdLogs(), 25))
		}
		rib := ixGoBGP(l.edge, "global", "rib")
		if n := strings.Count(rib, ixGoBGPUnderlay); n > limit {
			t.Errorf("roamd's RIB holds %d routes via gobgpd, max_prefixes is %d:\n%s", n, limit, rib)
		}
		lines := ixLogLines(l.roamdLogs(), regexp.QuoteMeta(ixGoBGPUnderlay)+`|gobgpd`, `prefix`, `\b20\b`)
		if len(lines) == 0 {
			t.Errorf("roamd logged no line naming gobgpd (%s), prefixes and its limit %d; its log:\n%s", ixGoBGPUnderlay, limit, ixTail(l.roamdLogs(), 30))
		} else {
			t.Logf("roamd: %s", lines[0])
		}
		now, _ := ixCountRoutes(l.edge.netns(), ixProtoRoam, within)
		t.Logf("most routes from gobgpd in edge's kernel: %d; now %d; gobgpd's view: %s", most, now, strings.TrimSpace(ixTail(gobgpdLog, 3)))
	})
}

// TestInteropGracefulRestart: roamd on edge is restarted (SIGTERM, then
// started again) while a client behind BIRD pings a pod behind edge at
// 100/s. With graceful restart, BIRD keeps roamd's routes (stale) and edge's
// kernel keeps BIRD's, so not one ping is lost; afterwards the sessions are
// Established again and the routes are back.
func TestInteropGracefulRestart(t *testing.T) {
	l := ixDeploy(t)
	l.waitSessions(20 * time.Second)
	l.waitPing(l.client, ixPod1, 10*time.Second)

	const count = 1500 // at 100/s: 15 s, well past the restart
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ping := exec.CommandContext(ctx, labtest.Roamlab(t), "exec", "-t", l.file, "-n", "client", "--",
		"ping", "-q", "-i", "0.01", "-c", fmt.Sprint(count), "-W", "1", "-w", "40", ixPod1)
	ping.WaitDelay = time.Second
	var pingOut strings.Builder
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	pingDone := make(chan error, 1)
	go func() { pingDone <- ping.Wait() }()
	defer func() { cancel(); <-pingDone }()
	time.Sleep(2 * time.Second)

	pid := roamdPID(l.file, "edge")
	if pid == 0 {
		t.Fatalf("no roamd runs in edge\n%s", ixTail(l.roamdLogs(), 30))
	}
	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, 10*time.Second)
	// roamd is down: BIRD keeps its routes (graceful restart), edge's kernel
	// keeps BIRD's.
	var down struct{ proto, bird, birdKernel, edgeKernel string }
	ixPoll(3*time.Second, func() (bool, string) { // until BIRD has seen the session go
		down.proto = l.birdc("show", "protocols", "all", "edge")
		return !ixBirdEstablished(down.proto, "edge"), ""
	})
	down.bird, down.birdKernel = l.birdRoute(ixPodPrefix), ixKernelRoute(l.bird, ixPodPrefix)
	down.edgeKernel = ixRouteLine(l.roamRoutes(), ixClientPrefix)
	l.startRoamd(ixEdgeConfig)
	l.waitSessions(20 * time.Second)
	t.Logf("roamd stopped and started again; sessions Established %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))

	if ixBirdEstablished(down.proto, "edge") {
		t.Errorf("while roamd was stopped BIRD still showed its session Established: the restart did not happen\n%s", down.proto)
	}
	if !strings.Contains(down.proto, "Neighbor graceful restart active") {
		t.Errorf("while roamd was stopped BIRD was not in graceful restart for it (want \"Neighbor graceful restart active\"): roamd's shutdown was not a graceful restart\nbirdc show protocols all edge:\n%s", down.proto)
	}
	if !strings.Contains(down.bird, "via "+ixEdgeUnderlay) || !strings.Contains(down.birdKernel, "via "+ixEdgeUnderlay) {
		t.Errorf("while roamd was stopped BIRD dropped %s (want it kept as stale):\nbirdc show route %s:\n%s\nip route in bird: %q\nbirdc show protocols all edge:\n%s",
			ixPodPrefix, ixPodPrefix, down.bird, down.birdKernel, down.proto)
	}
	if !strings.Contains(down.edgeKernel, "via "+ixBirdUnderlay) {
		t.Errorf("while roamd was stopped edge's kernel lost %s via %s (roamd removed its routes on shutdown): ip route show proto 114 had %q",
			ixClientPrefix, ixBirdUnderlay, down.edgeKernel)
	}

	select {
	case <-pingDone:
		pingDone <- nil
	case <-time.After(45 * time.Second):
		t.Fatalf("ping did not end")
	}
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(pingOut.String())
	if m == nil || m[1] != fmt.Sprint(count) || m[2] != fmt.Sprint(count) {
		t.Errorf("ping from client to pod1 (%d at 100/s) across roamd's restart: want %d of %d received; ping said\n%s",
			count, count, count, pingOut.String())
	} else {
		t.Logf("ping across the restart: %s", m[0])
	}

	// Afterwards: fresh routes on both sides.
	l.waitBirdRoute(ixPodPrefix, ixEdgeUnderlay, true, 10*time.Second)
	l.waitRoamRoute(ixClientPrefix, ixBirdUnderlay, true, 10*time.Second)
	// BIRD ends its graceful restart for roamd (End-of-RIB received): the
	// route is fresh again, no longer stale.
	ok, seen := ixPoll(15*time.Second, func() (bool, string) {
		p := l.birdc("show", "protocols", "all", "edge")
		return ixBirdEstablished(p, "edge") && !strings.Contains(p, "graceful restart active"), p
	})
	if !ok {
		t.Errorf("BIRD still in graceful restart for roamd 15s after it came back (its routes stale):\n%s", seen)
	}
	// And roamd ends its own for BIRD: BIRD's route is no longer stale ("S").
	ok, seen = ixPoll(15*time.Second, func() (bool, string) {
		rib := ixGoBGP(l.edge, "global", "rib")
		line := ixRouteLine(rib, ixClientPrefix)
		return line != "" && !strings.HasPrefix(line, "S"), rib
	})
	if !ok {
		t.Errorf("roamd's route to %s is still stale or missing 15s after it came back; gobgp global rib in edge:\n%s", ixClientPrefix, seen)
	}
}
