package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// TestForeignNamespaceUntouched: a namespace named like a lab node that
// roamlab did not create (another lab's node whose name contains '-', an
// ip-netns user, containerlab) is never deployed over, entered or destroyed.
func TestForeignNamespaceUntouched(t *testing.T) {
	labtest.RequireRoot(t)
	lab := fmt.Sprintf("own%d", os.Getpid())
	foreign := "clab-" + lab + "-x"
	if out, err := exec.Command("ip", "netns", "add", foreign).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", foreign).Run() })
	marker := fmt.Sprintf("600.%d", os.Getpid()+1)
	sleeper := exec.Command("ip", "netns", "exec", foreign, "sleep", marker)
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	file := writeTopology(t, "name: "+lab+"\ntopology:\n  nodes:\n    x: {kind: linux}\n")
	r := labtest.Run(t, "deploy", "-t", file)
	if r.Code != 1 || !strings.Contains(r.Stderr, "did not create it") {
		t.Errorf("deploy over a foreign namespace: exit %d %q", r.Code, r.Stderr)
	}
	if r := labtest.Run(t, "exec", "-t", file, "-n", "x", "--", "true"); r.Code == 0 {
		t.Error("exec entered a namespace the lab does not own")
	}
	labtest.MustRun(t, "destroy", "-t", file)
	if len(procsWithArg(t, marker)) == 0 {
		t.Error("destroy killed a process in a namespace the lab does not own")
	}
	if _, err := os.Stat("/run/netns/" + foreign); err != nil {
		t.Errorf("destroy removed a namespace the lab does not own: %v", err)
	}
}

// TestDestroyFollowsState: destroy removes what deploy made even when the
// topology file has changed since (a node removed from it).
func TestDestroyFollowsState(t *testing.T) {
	labtest.RequireRoot(t)
	lab := fmt.Sprintf("state%d", os.Getpid())
	file := writeTopology(t, "name: "+lab+"\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n")
	labtest.MustRun(t, "deploy", "-t", file)
	t.Cleanup(func() { labtest.Run(t, "destroy", "-t", file) })
	if err := os.WriteFile(file, []byte("name: "+lab+"\ntopology:\n  nodes:\n    a: {kind: linux}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	labtest.MustRun(t, "destroy", "-t", file)
	waitFor(t, 2*time.Second, "the lab's namespaces to go", func() bool { return len(labNamespaces(t, lab)) == 0 })
	assertGone(t, lab)
}
