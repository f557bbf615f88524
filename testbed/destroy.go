package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Destroy removes every process, namespace and link of the lab and its state
// directory. It works on a lab in any state, including a half-finished
// deploy, and destroying a lab that is not deployed does nothing.
func (l *Lab) Destroy(ctx context.Context) error {
	var errs []error
	for _, n := range l.Topo.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.destroyNode(n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.unmountBelow(l.Dir()); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(l.Dir()); err != nil {
		errs = append(errs, fmt.Errorf("testbed: %w", err))
	}
	if len(errs) == 0 {
		l.Log.Info("destroyed")
	}
	return errors.Join(errs...)
}

func (l *Lab) destroyNode(n *Node) error {
	var errs []error
	// Processes first: a process inside keeps a namespace alive. Those in the
	// mount namespace but not the network one (none expected) go too.
	for _, ns := range []struct{ file, typ string }{{l.NetnsPath(n.Name), "net"}, {l.MountnsPath(n.Name), "mnt"}} {
		if err := killNsProcs(ns.file, ns.typ, 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeMountns(l.MountnsPath(n.Name)); err != nil {
		errs = append(errs, err)
	}
	// Deleting the namespace deletes its veth ends, and with them their peers.
	if err := deleteNetns(NetnsName(l.Topo.Name, n.Name)); err != nil {
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
