package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Backends an interface's impairment can be applied with.
const (
	backendUserspace = "userspace"
	backendNetem     = "netem"
)

// config is the file emulator-<iface>.json in the node's state directory.
// Apply writes it; the emulator process reads it at start and on SIGHUP.
type config struct {
	Interface  string     // interface whose egress is impaired, inside the node's namespace
	Backend    string     // backendUserspace or backendNetem
	Generation uint64     // bumped by every Apply; the emulator reports the one in force
	Impairment Impairment // what the egress suffers; never zero in a file
}

// configFile is config as stored: durations as Go duration strings.
type configFile struct {
	Interface  string  `json:"interface"`
	Backend    string  `json:"backend"`
	Generation uint64  `json:"generation"`
	Delay      string  `json:"delay"`
	Jitter     string  `json:"jitter"`
	Loss       float64 `json:"loss"`
	RateKbps   uint64  `json:"rate_kbps"`
	Corrupt    float64 `json:"corrupt"`
}

func (c config) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(configFile{
		Interface:  c.Interface,
		Backend:    c.Backend,
		Generation: c.Generation,
		Delay:      c.Impairment.Delay.String(),
		Jitter:     c.Impairment.Jitter.String(),
		Loss:       c.Impairment.Loss,
		RateKbps:   c.Impairment.RateKbps,
		Corrupt:    c.Impairment.Corrupt,
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("emulator: encode config: %w", err)
	}
	return append(b, '\n'), nil
}

// parseConfig decodes and validates a config file.
func parseConfig(data []byte) (config, error) {
	var f configFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return config{}, fmt.Errorf("emulator: decode config: %w", err)
	}
	if dec.More() {
		return config{}, fmt.Errorf("emulator: decode config: trailing data")
	}
	c := config{
		Interface:  f.Interface,
		Backend:    f.Backend,
		Generation: f.Generation,
		Impairment: Impairment{Loss: f.Loss, RateKbps: f.RateKbps, Corrupt: f.Corrupt},
	}
	var err error
	if c.Impairment.Delay, err = parseDuration("delay", f.Delay); err != nil {
		return config{}, err
	}
	if c.Impairment.Jitter, err = parseDuration("jitter", f.Jitter); err != nil {
		return config{}, err
	}
	if err := c.validate(); err != nil {
		return config{}, err
	}
	return c, nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("emulator: config %s %q: %w", field, s, err)
	}
	return d, nil
}

func (c config) validate() error {
	if err := checkIfName(c.Interface); err != nil {
		return err
	}
	if c.Backend != backendUserspace && c.Backend != backendNetem {
		return fmt.Errorf("emulator: config backend %q is neither %q nor %q", c.Backend, backendUserspace, backendNetem)
	}
	if c.Impairment.IsZero() {
		return fmt.Errorf("emulator: config for %s has no impairment", c.Interface)
	}
	return c.Impairment.Validate()
}

// checkIfName accepts what the kernel accepts as an interface name
// (dev_valid_name): 1..15 bytes, not "." or "..", no '/', ':' or space.
func checkIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n\v\f\r\x00") {
		return fmt.Errorf("emulator: interface name %q is not valid", name)
	}
	return nil
}

func writeConfig(f files, c config) error {
	b, err := c.marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(f.config, b)
}

func readConfig(path string) (config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config{}, fmt.Errorf("emulator: read config: %w", err)
	}
	c, err := parseConfig(data)
	if err != nil {
		return config{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// writeFileAtomic replaces path with data so that readers see the old or
// the new content, never a mix (and inotify reports one IN_MOVED_TO).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("emulator: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("emulator: rename %s: %w", tmp, err)
	}
	return nil
}
