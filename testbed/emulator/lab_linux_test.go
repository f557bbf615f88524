package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// node is one side of a lab.
type node struct {
	name string // network namespace name, under /run/netns
	addr string // address of its eth1
}

func (n node) path() string { return "/run/netns/" + n.name }

// lab is two fresh network namespaces joined by a veth pair, eth1 on both
// sides, a = 192.0.2.1 and b = 192.0.2.2, IPv6 off and static neighbour
// entries, so the only frames on the link are the test's own.
type lab struct {
	a, b     node
	stateDir string // state directory of node a
	cleanup  bool   // stop is registered
}

func newLab(t testing.TB) *lab {
	t.Helper()
	labtest.RequireRoot(t)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	prefix := "emutest-" + hex.EncodeToString(suffix)
	l := &lab{
		a:        node{name: prefix + "-a", addr: "192.0.2.1"},
		b:        node{name: prefix + "-b", addr: "192.0.2.2"},
		stateDir: filepath.Join(t.TempDir(), "a"),
	}
	for _, n := range []node{l.a, l.b} {
		run(t, "ip", "netns", "add", n.name)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
			}
		})
		run(t, "ip", "netns", "exec", n.name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	run(t, "ip", "-n", l.a.name, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", l.b.name)
	for _, n := range []node{l.a, l.b} {
		run(t, "ip", "-n", n.name, "addr", "add", n.addr+"/24", "dev", "eth1")
		run(t, "ip", "-n", n.name, "link", "set", "lo", "up")
		run(t, "ip", "-n", n.name, "link", "set", "eth1", "up")
	}
	run(t, "ip", "-n", l.a.name, "neigh", "replace", l.b.addr, "lladdr", mac(t, l.b), "dev", "eth1", "nud", "permanent")
	run(t, "ip", "-n", l.b.name, "neigh", "replace", l.a.addr, "lladdr", mac(t, l.a), "dev", "eth1", "nud", "permanent")
	return l
}

func mac(t testing.TB, n node) string {
	t.Helper()
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", n.name, "-j", "link", "show", "eth1")), &links); err != nil || len(links) != 1 {
		t.Fatalf("mac of %s eth1: %v", n.name, err)
	}
	return links[0].Address
}

// run runs a command to completion, failing t if it fails, and returns its output.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// apply sets imp on node a's eth1, as roamlab does, and makes sure the test
// leaves no emulator behind.
func (l *lab) apply(t testing.TB, imp Impairment) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := Apply(ctx, l.a.path(), "eth1", imp, l.stateDir, exe); err != nil {
		t.Fatalf("Apply(%s): %v\n%s", imp, err, l.emulatorLog())
	}
	t.Logf("Apply(%s) took %v", imp, time.Since(start).Round(time.Microsecond))
	if !imp.IsZero() && !l.cleanup {
		l.cleanup = true
		t.Cleanup(func() {
			l.stop(t)
			if t.Failed() || testing.Verbose() {
				t.Logf("emulator log:\n%s", l.emulatorLog())
			}
		})
	}
}

// stop applies the zero impairment, and kills the emulator if that fails.
func (l *lab) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	f := filesFor(l.stateDir, "eth1")
	p := findEmulator(f)
	if err := Apply(ctx, l.a.path(), "eth1", Impairment{}, l.stateDir, ""); err != nil {
		t.Errorf("cleanup: Apply(none): %v", err)
		if p != nil {
			_ = p.signal(9)
		}
	}
	if p != nil {
		p.close()
	}
}

func (l *lab) emulatorLog() string {
	b, _ := os.ReadFile(filesFor(l.stateDir, "eth1").log)
	return string(b)
}

func inNetns(n node, fn func() error) error { return labtest.InNetns(n.path(), fn) }
