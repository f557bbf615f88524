package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed"
	"github.com/roamnet/roam/testbed/labtest"
)

// rootState is the root namespace's interfaces, addresses and routes (IPv4
// and IPv6, all tables), which a lab must never touch.
func rootState(t *testing.T) string {
	t.Helper()
	var out strings.Builder
	for _, args := range [][]string{
		{"-o", "link", "show"}, {"-o", "addr", "show"},
		{"-4", "route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"},
	} {
		b, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatalf("ip %v: %v", args, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			// Counters and ages change by themselves; identity does not.
			if i := strings.Index(line, " expires "); i >= 0 {
				line = line[:i]
			}
			out.WriteString(line + "\n")
		}
	}
	return out.String()
}

// labNamespaces lists the network namespaces of a lab that still exist.
func labNamespaces(t *testing.T, lab string) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "clab-"+lab+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// procsWithArg lists processes whose command line contains marker.
func procsWithArg(t *testing.T, marker string) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), marker) && !strings.Contains(string(cmdline), "roamlab") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func assertGone(t *testing.T, lab string) {
	t.Helper()
	if ns := labNamespaces(t, lab); len(ns) > 0 {
		t.Errorf("after destroy, namespaces of %s remain: %v", lab, ns)
	}
	if _, err := os.Stat(filepath.Join(testbed.DefaultRoot, lab)); !os.IsNotExist(err) {
		t.Errorf("after destroy, state of %s remains (%v)", lab, err)
	}
}

func inspectJSON(t *testing.T, file string) []testbed.NodeInfo {
	t.Helper()
	var doc struct{ Nodes []testbed.NodeInfo }
	out := labtest.MustRun(t, "inspect", "-t", file, "--format", "json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect json: %v\n%s", err, out)
	}
	return doc.Nodes
}

// TestShippedLabs deploys every lab in testbed/labs: every node runs, every
// link is up at both ends, exec works, a second deploy is refused, and
// destroy leaves nothing behind. The root namespace never changes.
func TestShippedLabs(t *testing.T) {
	labtest.RequireRoot(t)
	files, _ := filepath.Glob(filepath.Join(labtest.RepoRoot(), "testbed", "labs", "*.clab.yml"))
	if len(files) < 3 {
		t.Fatalf("found %d labs in testbed/labs", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			topo, err := testbed.LoadTopology(file)
			if err != nil {
				t.Fatal(err)
			}
			before := rootState(t)
			labtest.MustRun(t, "deploy", "-t", file)
			destroyed := false
			t.Cleanup(func() {
				if !destroyed {
					labtest.Run(t, "destroy", "-t", file)
				}
			})
			if after := rootState(t); before != after {
				t.Errorf("deploy changed the root namespace's links, addresses or routes:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			nodes := inspectJSON(t, file)
			if len(nodes) != len(topo.Nodes) {
				t.Fatalf("inspect shows %d nodes, topology has %d", len(nodes), len(topo.Nodes))
			}
			for _, n := range nodes {
				if n.State != "running" || n.Netns != "clab-"+topo.Name+"-"+n.Name {
					t.Errorf("node %s: state %q netns %q", n.Name, n.State, n.Netns)
				}
				for _, want := range topo.Interfaces(n.Name) {
					i := slices.IndexFunc(n.Interfaces, func(i testbed.IfaceInfo) bool { return i.Name == want })
					if i < 0 || n.Interfaces[i].State != "up" {
						t.Errorf("node %s: interface %s missing or not up: %+v", n.Name, want, n.Interfaces)
					}
				}
				if n.Kind == testbed.KindLinux {
					if r := labtest.Run(t, "exec", "-t", file, "-n", n.Name, "--", "sh", "-c", "exit 7"); r.Code != 7 {
						t.Errorf("exec in %s: exit code %d, want the command's 7", n.Name, r.Code)
					}
				}
			}
			r := labtest.Run(t, "deploy", "-t", file)
			if r.Code != 1 || !strings.Contains(r.Stderr, "already deployed") {
				t.Errorf("second deploy: exit %d, stderr %q; want 1 and \"already deployed\"", r.Code, r.Stderr)
			}
			labtest.MustRun(t, "destroy", "-t", file)
			destroyed = true
			assertGone(t, topo.Name)
			if after := rootState(t); before != after {
				t.Errorf("root namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestNodeIsolation: cmd runs with its output kept, binds show host files
// (read-only when asked), and every node has its own /run and /tmp, so two
// nodes' /var/run/wireguard sockets cannot collide.
func TestNodeIsolation(t *testing.T) {
	labtest.RequireRoot(t)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("600.%d", os.Getpid())
	file := writeTopology(t, fmt.Sprintf(`name: iso%d
topology:
  nodes:
    a:
      kind: linux
      binds: ["%s:/run/data:ro"]
      cmd: "echo started; exec sleep %s"
      env: {ROAM_TEST: hello}
    b: {kind: linux}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`, os.Getpid(), data, marker))
	labtest.Deploy(t, file)
	lab := fmt.Sprintf("iso%d", os.Getpid())

	if got := labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "cat", "/run/data/f"); got != "from host\n" {
		t.Errorf("bind: read %q", got)
	}
	if r := labtest.Run(t, "exec", "-t", file, "-n", "a", "--", "touch", "/run/data/new"); r.Code == 0 {
		t.Error("read-only bind accepted a write")
	}
	if got := labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "sh", "-c", "echo $ROAM_TEST"); got != "hello\n" {
		t.Errorf("env: got %q", got)
	}
	labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "sh", "-c", "mkdir -p /var/run/wireguard && echo a > /var/run/wireguard/roam0.sock && echo a > /tmp/x")
	if r := labtest.Run(t, "exec", "-t", file, "-n", "b", "--", "ls", "/var/run/wireguard/roam0.sock", "/tmp/x"); r.Code == 0 {
		t.Error("node b sees node a's /var/run and /tmp")
	}
	if _, err := os.Stat("/var/run/wireguard/roam0.sock"); err == nil {
		t.Error("the host sees node a's /var/run/wireguard/roam0.sock")
	}
	// A node sees only its own interfaces in /sys.
	if got := labtest.MustRun(t, "exec", "-t", file, "-n", "a", "--", "ls", "/sys/class/net"); got != "eth1\nlo\n" {
		t.Errorf("/sys/class/net in a: %q", got)
	}
	if pids := procsWithArg(t, marker); len(pids) == 0 {
		t.Fatal("cmd is not running")
	}
	waitFor(t, 5*time.Second, "cmd output in cmd.log", func() bool {
		log, _ := os.ReadFile(filepath.Join(testbed.DefaultRoot, lab, "a", "cmd.log"))
		return string(log) == "started\n"
	})
	labtest.MustRun(t, "destroy", "-t", file)
	if pids := procsWithArg(t, marker); len(pids) > 0 {
		t.Errorf("cmd survives destroy: pids %v", pids)
	}
	assertGone(t, lab)
}

// TestDestroyHalfDeployed kills a deploy midway (while a node's exec runs)
// and destroys what it left.
func TestDestroyHalfDeployed(t *testing.T) {
	labtest.RequireRoot(t)
	marker := fmt.Sprintf("30.%d", os.Getpid())
	lab := fmt.Sprintf("half%d", os.Getpid())
	file := writeTopology(t, fmt.Sprintf(`name: %s
topology:
  nodes:
    a: {kind: linux, exec: ["ip addr add 192.0.2.1/24 dev eth1"]}
    b: {kind: linux, exec: ["sleep %s"]}
    c: {kind: linux}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`, lab, marker))
	t.Cleanup(func() { labtest.Run(t, "destroy", "-t", file) })
	deploy := exec.Command(labtest.Roamlab(t), "deploy", "-t", file)
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "b's exec to start", func() bool { return len(procsWithArg(t, marker)) > 0 })
	_ = deploy.Process.Kill()
	_ = deploy.Wait()
	if ns := labNamespaces(t, lab); len(ns) != 3 {
		t.Fatalf("half deploy left namespaces %v, want all 3 nodes'", ns)
	}
	labtest.MustRun(t, "destroy", "-t", file)
	assertGone(t, lab)
	if pids := procsWithArg(t, marker); len(pids) > 0 {
		t.Errorf("exec process survives destroy: %v", pids)
	}
}

// TestNATLab: both hosts reach the hub through their NATs, and the hub sees
// the NATs' public addresses, never the hosts'.
func TestNATLab(t *testing.T) {
	file := labtest.LabFile("nat")
	labtest.Deploy(t, file)
	for _, host := range []string{"host1", "host2"} {
		labtest.MustRun(t, "exec", "-t", file, "-n", host, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.1")
	}
	seen := captureSources(t, file, "hub", "eth1", "icmp[icmptype] == icmp-echo", func() {
		labtest.MustRun(t, "exec", "-t", file, "-n", "host1", "--", "ping", "-c", "3", "-i", "0.2", "203.0.113.1")
		labtest.MustRun(t, "exec", "-t", file, "-n", "host2", "--", "ping", "-c", "3", "-i", "0.2", "203.0.113.1")
	})
	if want := []string{"203.0.113.11", "203.0.113.12"}; !slices.Equal(seen, want) {
		t.Errorf("hub saw echo requests from %v, want only the NATs' %v", seen, want)
	}
	if r := labtest.Run(t, "exec", "-t", file, "-n", "hub", "--", "ping", "-c", "1", "-W", "1", "192.0.2.2"); r.Code == 0 {
		t.Error("the hub reaches host1's private address directly")
	}
}

// captureSources runs tcpdump on node:iface while traffic() runs and returns
// the sorted distinct source addresses of packets matching filter.
func captureSources(t *testing.T, file, node, iface, filter string, traffic func()) []string {
	t.Helper()
	cmd := exec.Command(labtest.Roamlab(t), "exec", "-t", file, "-n", node, "--",
		"timeout", "20", "tcpdump", "-l", "-n", "-i", iface, filter)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		var seen strings.Builder
		for {
			n, err := stderr.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), "listening on") {
				close(ready)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("tcpdump did not start")
	}
	traffic()
	time.Sleep(200 * time.Millisecond) // let the last packets print
	_ = cmd.Process.Signal(os.Interrupt)
	lines := make(chan string)
	go func() {
		data := make([]byte, 0, 8192)
		buf := make([]byte, 4096)
		for {
			n, err := stdout.Read(buf)
			data = append(data, buf[:n]...)
			if err != nil {
				lines <- string(data)
				return
			}
		}
	}()
	var out string
	select {
	case out = <-lines:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		out = <-lines
	}
	_ = cmd.Wait()
	re := regexp.MustCompile(`IP (\d+\.\d+\.\d+\.\d+)(\.\d+)? >`)
	var srcs []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		if !slices.Contains(srcs, m[1]) {
			srcs = append(srcs, m[1])
		}
	}
	slices.Sort(srcs)
	return srcs
}

func writeTopology(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "lab.clab.yml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustTopology(t *testing.T, file string) *testbed.Topology {
	t.Helper()
	topo, err := testbed.LoadTopology(file)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}
