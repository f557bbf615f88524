package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ackTimeout bounds how long Apply waits for the emulator to confirm.
const ackTimeout = 10 * time.Second

// Apply sets imp on the egress of iface inside the network namespace at
// netnsPath (a file such as /run/netns/clab-lab-node), replacing what was
// there, and returns once the new setting is in force.
//
// stateDir is a directory owned by the node; the emulator keeps its files
// emulator-<iface>.{json,pid,state,log,lock} there. exe is the program
// started, detached, as `nsenter --net=<netnsPath> -- <exe> emulate --config
// <stateDir>/emulator-<iface>.json` when no emulator runs for iface; a running
// one gets the new config by SIGHUP, and frames already queued keep their
// schedule. Where the kernel has sch_netem, a netem root qdisc is used instead
// and exe is not started.
//
// A zero imp stops the emulator and removes TAP, filter and clsact qdisc (or
// the netem qdisc), leaving no hop on the interface.
func Apply(ctx context.Context, netnsPath, iface string, imp Impairment, stateDir, exe string) error {
	if err := imp.Validate(); err != nil {
		return err
	}
	if err := checkIfName(iface); err != nil {
		return err
	}
	if netnsPath == "" || stateDir == "" {
		return fmt.Errorf("emulator: apply to %s: netns path and state directory are required", iface)
	}
	// Absolute, so the emulator's command line names the same file as Show's.
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return fmt.Errorf("emulator: state directory: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("emulator: state directory: %w", err)
	}
	f := filesFor(stateDir, iface)
	unlock, err := lockFile(f.lock)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()

	old, err := readConfig(f.config)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		old = config{} // unreadable: start over; a running emulator is still found by its pid
	}
	if imp.IsZero() {
		return clearEgress(ctx, netnsPath, iface, f, old)
	}
	next := config{Interface: iface, Impairment: imp, Generation: old.Generation + 1}

	if old.Backend == backendNetem {
		return applyNetem(ctx, netnsPath, f, next)
	}
	if p := findEmulator(f); p != nil {
		defer p.close()
		next.Backend = backendUserspace
		return reconfigure(ctx, p, f, next)
	}
	if old.Backend == "" {
		// First impairment of iface: netem if the kernel has it.
		if err := applyNetem(ctx, netnsPath, f, next); err == nil {
			return nil
		}
	}
	next.Backend = backendUserspace
	return startUserspace(ctx, netnsPath, exe, f, next)
}

func applyNetem(ctx context.Context, netnsPath string, f files, c config) error {
	c.Backend = backendNetem
	if err := runTC(ctx, netnsPath, netemArgs(c.Interface, c.Impairment)); err != nil {
		return err
	}
	return writeConfig(f, c)
}

// reconfigure hands c to the running emulator p and waits until it reports
// c's generation in force.
func reconfigure(ctx context.Context, p *proc, f files, c config) error {
	if err := writeConfig(f, c); err != nil {
		return err
	}
	if err := p.signal(unix.SIGHUP); err != nil {
		return err
	}
	return awaitGeneration(ctx, p, f, c)
}

func startUserspace(ctx context.Context, netnsPath, exe string, f files, c config) error {
	if exe == "" {
		return fmt.Errorf("emulator: apply to %s: no emulator program given", c.Interface)
	}
	if err := writeConfig(f, c); err != nil {
		return err
	}
	if err := os.Remove(f.status); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("emulator: remove stale status: %w", err)
	}
	p, err := startEmulator(netnsPath, exe, f)
	if err != nil {
		return errors.Join(err, os.Remove(f.config))
	}
	err = awaitGeneration(ctx, p, f, c)
	p.close()
	if err != nil {
		// Leave no half-started emulator, hook or state behind. ctx may be
		// what expired, so the cleanup gets time of its own.
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		defer cancel()
		return errors.Join(err, clearEgress(cleanupCtx, netnsPath, c.Interface, f, config{}))
	}
	return nil
}

// awaitGeneration waits until p publishes c's generation (or a later one).
func awaitGeneration(ctx context.Context, p *proc, f files, c config) error {
	err := p.await(ctx, filepath.Dir(f.status), func() bool {
		s, err := readStatus(f.status)
		return err == nil && s.PID == p.pid && s.Generation >= c.Generation
	})
	if err != nil {
		return fmt.Errorf("emulator: %s: %s not confirmed: %w; %s ends: %s", c.Interface, c.Impairment, err, f.log, lastLine(f.log))
	}
	return nil
}

// lastLine is the last line of the file at path, for error messages.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	b = bytes.TrimRight(b, "\n")
	return string(b[bytes.LastIndexByte(b, '\n')+1:])
}

// clearEgress removes every trace of emulation from iface.
func clearEgress(ctx context.Context, netnsPath, iface string, f files, old config) error {
	var errs []error
	if old.Backend == backendNetem {
		errs = append(errs, runTC(ctx, netnsPath, netemDelArgs(iface)))
	}
	if p := findEmulator(f); p != nil {
		err := p.signal(unix.SIGTERM)
		if err == nil {
			err = p.awaitExit(ctx, filepath.Dir(f.status))
		}
		p.close()
		errs = append(errs, err)
	}
	// Whatever the process did, or did not do if it crashed: leave nothing.
	errs = append(errs, removeLeftovers(netnsPath, iface))
	for _, name := range []string{f.config, f.pid, f.status} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeLeftovers deletes the clsact qdisc of iface and its TAP inside the
// namespace at netnsPath, and checks that both are gone.
func removeLeftovers(netnsPath, iface string) error {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("emulator: netns %s: %w", netnsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("emulator: netlink in %s: %w", netnsPath, err)
	}
	defer h.Close()
	link, err := h.LinkByName(iface)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil // the interface is gone, and its hook with it
		}
		return fmt.Errorf("emulator: interface %s: %w", iface, err)
	}
	if err := removeHook(h, link.Attrs().Index); err != nil {
		return err
	}
	tap := tapName(link.Attrs().Index)
	if t, err := h.LinkByName(tap); err == nil {
		if err := h.LinkDel(t); err != nil {
			return fmt.Errorf("emulator: delete %s: %w", tap, err)
		}
	}
	if present, err := hasClsact(h, link); err != nil || present {
		return errors.Join(err, fmt.Errorf("emulator: clsact qdisc still on %s", iface))
	}
	if _, err := h.LinkByName(tap); err == nil {
		return fmt.Errorf("emulator: %s still present", tap)
	}
	return nil
}
