package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nsProcs lists the processes whose namespace of the given type ("net" or
// "mnt") is the one held by the file nsFile.
func nsProcs(nsFile, typ string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(nsFile, &want); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("testbed: stat %s: %w", nsFile, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("testbed: list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns", typ), &st) != nil {
			continue // gone, or a kernel thread
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killNsProcs ends every process in the namespace: SIGTERM, then SIGKILL for
// those still there after grace. It returns once they are gone or after
// grace+2s, with an error naming the survivors.
func killNsProcs(nsFile, typ string, grace time.Duration) error {
	pids, err := nsProcs(nsFile, typ)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	killed := false
	for {
		pids, err = nsProcs(nsFile, typ)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			if killed {
				return fmt.Errorf("testbed: processes %v in %s survive SIGKILL", pids, nsFile)
			}
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			killed, deadline = true, time.Now().Add(2*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
