package testbed

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A linux node gets a private mount namespace, as a container has: its own
// /run (so /var/run), /tmp and /sys, plus its binds. It is created by running
// `<exe> nsinit` in a new mount namespace inside the node's network namespace
// and kept by bind-mounting /proc/PID/ns/mnt onto a file in the node's state
// directory, the way `ip netns` keeps network namespaces.

// NsinitSpec is what nsinit reads from its standard input.
type NsinitSpec struct {
	Root  string `json:"root"` // the lab state root, whose pins the node must not hold
	Binds []Bind `json:"binds"`
}

// createMountns creates and pins the mount namespace of a linux node.
func (l *Lab) createMountns(n *Node) error {
	if err := ensurePrivateMount(l.Root); err != nil {
		return err
	}
	file := l.MountnsPath(n.Name)
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return fmt.Errorf("testbed: %s: %w", n.Name, err)
	}
	cmd := exec.Command("nsenter", "--net="+l.NetnsPath(n.Name), "--", l.Exe, "nsinit")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	cmd.Stderr = &strings.Builder{}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testbed: %s: start nsinit: %w", n.Name, err)
	}
	defer func() { _ = cmd.Wait() }()
	defer stdin.Close()
	if err := json.NewEncoder(stdin).Encode(NsinitSpec{Root: l.Root, Binds: n.Binds}); err != nil {
		return fmt.Errorf("testbed: %s: nsinit: %w", n.Name, err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ok" {
		stdin.Close()
		_ = cmd.Wait()
		return fmt.Errorf("testbed: node %s: mount namespace: %s", n.Name, strings.TrimSpace(cmd.Stderr.(*strings.Builder).String()))
	}
	src := fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid)
	if err := unix.Mount(src, file, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("testbed: node %s: pin mount namespace on %s: %w", n.Name, file, err)
	}
	return nil
}

// removeMountns unpins a node's mount namespace.
func removeMountns(file string) error {
	if err := unix.Unmount(file, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("testbed: unpin mount namespace %s: %w", file, err)
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("testbed: %w", err)
	}
	return nil
}

// ensurePrivateMount makes dir a mount point with private propagation, which a
// file pinning a mount namespace needs (a shared one could loop).
func ensurePrivateMount(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	if !isMountPoint(dir) {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("testbed: bind %s: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("testbed: make %s private: %w", dir, err)
	}
	return nil
}

func isMountPoint(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == dir {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// Nsinit is the body of `roamlab nsinit`, run in a fresh mount namespace
// (already made recursively private) inside the node's network namespace. It
// reads an NsinitSpec from in, sets up the node's mounts, writes "ok" to out
// and then holds the namespace until in is closed.
func Nsinit(in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	var spec NsinitSpec
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("nsinit: read spec: %w", err)
	}
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("nsinit: bad spec: %w", err)
	}
	if err := setupNodeMounts(spec); err != nil {
		return err
	}
	fmt.Fprintln(out, "ok")
	_, _ = io.Copy(io.Discard, r)
	return nil
}

func setupNodeMounts(spec NsinitSpec) error {
	// The host's namespace pins are no business of a node (and would keep
	// other nodes' namespaces alive): drop this namespace's copies.
	for _, d := range []string{netnsDir, spec.Root} {
		if d != "" && isMountPoint(d) {
			if err := unix.Unmount(d, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("nsinit: detach %s: %w", d, err)
			}
		}
	}
	// Open bind sources before /run and /tmp are covered.
	srcs := make([]*os.File, len(spec.Binds))
	for i, b := range spec.Binds {
		f, err := os.OpenFile(b.Host, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("nsinit: bind %s:%s: host path: %w", b.Host, b.Target, err)
		}
		defer f.Close()
		srcs[i] = f
	}
	for _, m := range []struct{ target, fstype, data string }{
		{"/run", "tmpfs", "mode=755"},
		{"/tmp", "tmpfs", "mode=1777"},
		{"/sys", "sysfs", ""},
	} {
		if err := unix.Mount(m.fstype, m.target, m.fstype, unix.MS_NOSUID|unix.MS_NODEV, m.data); err != nil {
			return fmt.Errorf("nsinit: mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	if err := os.Mkdir("/run/lock", 0o1777); err != nil {
		return fmt.Errorf("nsinit: %w", err)
	}
	for i, b := range spec.Binds {
		if err := bindInto(srcs[i], b); err != nil {
			return err
		}
	}
	return nil
}

// privateDirs are the node's own: bind targets may be created only below them.
var privateDirs = []string{"/run/", "/var/run/", "/tmp/"}

func bindInto(src *os.File, b Bind) error {
	fi, err := src.Stat()
	if err != nil {
		return fmt.Errorf("nsinit: bind %s: %w", b.Host, err)
	}
	if _, err := os.Lstat(b.Target); errors.Is(err, os.ErrNotExist) {
		private := false
		for _, d := range privateDirs {
			private = private || strings.HasPrefix(b.Target, d)
		}
		if !private {
			return fmt.Errorf("nsinit: bind %s:%s: %s does not exist (roamlab creates bind targets only below /run and /tmp, never on the host's filesystem)", b.Host, b.Target, b.Target)
		}
		if fi.IsDir() {
			err = os.MkdirAll(b.Target, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(b.Target), 0o755); err == nil {
			err = os.WriteFile(b.Target, nil, 0o644)
		}
		if err != nil {
			return fmt.Errorf("nsinit: bind target: %w", err)
		}
	}
	from := fmt.Sprintf("/proc/self/fd/%d", src.Fd())
	if err := unix.Mount(from, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("nsinit: bind %s on %s: %w", b.Host, b.Target, err)
	}
	if b.ReadOnly {
		if err := unix.Mount("", b.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("nsinit: bind %s read-only: %w", b.Target, err)
		}
	}
	return nil
}
