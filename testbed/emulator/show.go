package emulator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Status is the impairment in force on one emulated interface.
type Status struct {
	Interface  string
	Impairment Impairment
	Backend    string // "userspace" or "netem"
	// Running: for "userspace", the emulator process is alive (if not, the
	// interface's egress is black-holed until the next Apply); "netem" has
	// no process and is always running.
	Running bool
	// Counters of the userspace emulator since it started; zero for netem.
	Sent, Lost, QueueDrops, Corrupted uint64
}

// Show reports the impairment in force on every emulated interface of the
// node whose state directory is stateDir, sorted by interface.
func Show(stateDir string) ([]Status, error) {
	stateDir, err := filepath.Abs(stateDir) // as Apply names it
	if err != nil {
		return nil, fmt.Errorf("emulator: show %s: %w", stateDir, err)
	}
	configs, err := filepath.Glob(filepath.Join(stateDir, "emulator-*.json"))
	if err != nil {
		return nil, fmt.Errorf("emulator: show %s: %w", stateDir, err)
	}
	var out []Status
	var errs []error
	for _, path := range configs {
		c, err := readConfig(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, statusOf(path, c))
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Interface, b.Interface) })
	return out, errors.Join(errs...)
}

func statusOf(configPath string, c config) Status {
	st := Status{Interface: c.Interface, Impairment: c.Impairment, Backend: c.Backend}
	if c.Backend == backendNetem {
		st.Running = true
		return st
	}
	f := filesOfConfig(configPath)
	b, err := os.ReadFile(f.pid)
	if err != nil {
		return st
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	st.Running = pid > 0 && alive(pid, configPath)
	if s, err := readStatus(f.status); err == nil && s.PID == pid {
		st.Sent, st.Lost, st.QueueDrops, st.Corrupted = s.Sent, s.Lost, s.QueueDrops, s.Corrupted
	}
	return st
}
