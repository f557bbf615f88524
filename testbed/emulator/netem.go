package emulator

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// netemArgs are the tc arguments that put imp on the egress of iface as a
// netem root qdisc, replacing the root qdisc there. Durations go in whole
// microseconds ("us"), which every tc parses; rates in kbit (1000 bit/s).
// Jitter is uniform, as the emulator's: no distribution table.
func netemArgs(iface string, imp Impairment) []string {
	args := []string{"qdisc", "replace", "dev", iface, "root", "netem", "limit", strconv.Itoa(queueLimit)}
	if imp.Delay != 0 || imp.Jitter != 0 {
		args = append(args, "delay", strconv.FormatInt(imp.Delay.Microseconds(), 10)+"us")
		if imp.Jitter != 0 {
			args = append(args, strconv.FormatInt(imp.Jitter.Microseconds(), 10)+"us")
		}
	}
	if imp.Loss != 0 {
		args = append(args, "loss", formatPercent(imp.Loss)+"%")
	}
	if imp.RateKbps != 0 {
		args = append(args, "rate", strconv.FormatUint(imp.RateKbps, 10)+"kbit")
	}
	if imp.Corrupt != 0 {
		args = append(args, "corrupt", formatPercent(imp.Corrupt)+"%")
	}
	return args
}

// netemDelArgs are the tc arguments that remove the netem root qdisc of
// iface, restoring the default.
func netemDelArgs(iface string) []string {
	return []string{"qdisc", "del", "dev", iface, "root"}
}

// runTC runs tc with args inside the network namespace at netnsPath.
func runTC(ctx context.Context, netnsPath string, args []string) error {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netnsPath, "--", "tc"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("emulator: tc %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
