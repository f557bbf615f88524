package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Destroy removes every process, namespace and link the lab's deploy created
// (as recorded in its state, whatever the topology file says now) and the
// state directory. It works on a lab in any state, including a half-finished
// deploy; it runs to the end even if ctx is cancelled (a half-destroyed lab
// helps nobody); destroying a lab that is not deployed does nothing.
func (l *Lab) Destroy(ctx context.Context) error {
	if _, err := os.Stat(l.Dir()); errors.Is(err, os.ErrNotExist) {
		l.Log.Info("not deployed: nothing to destroy")
		return nil
	}
	owned, err := l.readOwned()
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range owned {
		if err := l.destroyNode(o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.unmountBelow(l.Dir()); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(l.Dir()); err != nil {
			errs = append(errs, fmt.Errorf("testbed: %w", err))
		}
	}
	if len(errs) == 0 {
		l.Log.Info("destroyed")
	}
	return errors.Join(errs...)
}

func (l *Lab) destroyNode(o ownedNode) error {
	netns := filepath.Join(netnsDir, o.Netns)
	mnt := l.MountnsPath(o.Node)
	if !isOwned(o) {
		if netnsExists(o.Netns) {
			l.Log.Warn("namespace was replaced since deploy; leaving it alone", "netns", o.Netns)
		}
		return removeMountns(mnt)
	}
	var errs []error
	// Processes first: a process inside keeps a namespace alive.
	for _, ns := range []struct{ file, typ string }{{netns, "net"}, {mnt, "mnt"}} {
		if err := killNsProcs(ns.file, ns.typ, 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeMountns(mnt); err != nil {
		errs = append(errs, err)
	}
	// Deleting the namespace deletes its veth ends, and with them their peers.
	if err := deleteNetns(o.Netns); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unmountBelow detaches every mount below dir (deepest first), so that the
// state directory can be removed even after a deploy that was cut short.
func (l *Lab) unmountBelow(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 {
			if p := unescapeMount(fields[4]); strings.HasPrefix(p, dir+"/") {
				points = append(points, p)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("testbed: unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
