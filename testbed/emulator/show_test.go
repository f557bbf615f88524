package emulator

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestShow(t *testing.T) {
	dir := t.TempDir()
	netem := config{Interface: "eth2", Backend: backendNetem, Generation: 1, Impairment: Impairment{Loss: 5}}
	user := config{Interface: "eth1", Backend: backendUserspace, Generation: 4, Impairment: Impairment{Delay: time.Millisecond}}
	for _, c := range []config{netem, user} {
		if err := writeConfig(filesFor(dir, c.Interface), c); err != nil {
			t.Fatal(err)
		}
	}
	// eth1's pid is this test process, which is not an emulator for it.
	f := filesFor(dir, "eth1")
	pid := os.Getpid()
	if err := os.WriteFile(f.pid, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeStatus(f.status, status{PID: pid, Generation: 4, Sent: 10, Lost: 2, QueueDrops: 1, Corrupted: 3}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "emulator-eth3.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := Show(dir)
	if err == nil {
		t.Error("Show() reported no error for the broken emulator-eth3.json")
	}
	want := []Status{
		{Interface: "eth1", Impairment: user.Impairment, Backend: "userspace", Running: false, Sent: 10, Lost: 2, QueueDrops: 1, Corrupted: 3},
		{Interface: "eth2", Impairment: netem.Impairment, Backend: "netem", Running: true},
	}
	if len(got) != len(want) {
		t.Fatalf("Show() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Show()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestShowEmpty(t *testing.T) {
	got, err := Show(t.TempDir())
	if err != nil || len(got) != 0 {
		t.Errorf("Show(empty dir) = %+v, %v; want nothing", got, err)
	}
}
