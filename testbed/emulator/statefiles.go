package emulator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// files names the per-interface files in a node's state directory.
type files struct {
	config string // emulator-<iface>.json: written by Apply, read by the emulator
	status string // emulator-<iface>.state: written by the emulator
	pid    string // emulator-<iface>.pid: written by Apply when it starts the emulator
	log    string // emulator-<iface>.log: the emulator's stdout and stderr, appended
	lock   string // emulator-<iface>.lock: serialises Apply calls for the interface
}

func filesFor(stateDir, iface string) files {
	base := filepath.Join(stateDir, "emulator-"+iface)
	return files{config: base + ".json", status: base + ".state", pid: base + ".pid", log: base + ".log", lock: base + ".lock"}
}

// filesOfConfig derives the other names from a config path given to Serve.
func filesOfConfig(configPath string) files {
	base := strings.TrimSuffix(configPath, ".json")
	return files{config: configPath, status: base + ".state", pid: base + ".pid", log: base + ".log", lock: base + ".lock"}
}

// status is what a running emulator publishes, every statusInterval and
// after every reload.
type status struct {
	PID        int       `json:"pid"`
	TAP        string    `json:"tap"`
	Generation uint64    `json:"generation"` // config generation in force
	Sent       uint64    `json:"sent"`
	Lost       uint64    `json:"lost"`        // dropped by Loss
	QueueDrops uint64    `json:"queue_drops"` // dropped because the queue was full
	Corrupted  uint64    `json:"corrupted"`
	SendErrors uint64    `json:"send_errors"` // frames the interface refused
	Updated    time.Time `json:"updated"`
}

const statusInterval = 200 * time.Millisecond

func writeStatus(path string, s status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("emulator: encode status: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func readStatus(path string) (status, error) {
	var s status
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("emulator: read status: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("emulator: decode status %s: %w", path, err)
	}
	return s, nil
}
