package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// errExited reports that the emulator process ended while Apply waited for it.
var errExited = errors.New("emulator process exited")

// proc is an emulator process, held by a pidfd so signals cannot reach a
// process that reused its pid.
type proc struct {
	pid   int
	pidfd int
}

// findEmulator returns the emulator running for the config in f, or nil.
func findEmulator(f files) *proc {
	b, err := os.ReadFile(f.pid)
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	// Checked after opening the pidfd: if pid is still ours now, so is pidfd.
	if !alive(pid, f.config) {
		unix.Close(pidfd)
		return nil
	}
	return &proc{pid: pid, pidfd: pidfd}
}

// alive reports whether pid is a live emulator serving configPath. A zombie
// has an empty command line and so does not count.
func alive(pid int, configPath string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(b, []byte{0})
	for i := range args {
		if i > 0 && string(args[i-1]) == "--config" && string(args[i]) == configPath {
			return true
		}
	}
	return false
}

// startEmulator starts `nsenter --net=<netnsPath> -- <exe> emulate --config
// <config>` in a session of its own, output appended to the log file.
func startEmulator(netnsPath, exe string, f files) (*proc, error) {
	logf, err := os.OpenFile(f.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("emulator: open log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net="+netnsPath, "--", exe, "emulate", "--config", f.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("emulator: start %s: %w", exe, err)
	}
	// nsenter execs exe, so the pid is the emulator's. The pidfd is opened
	// before anyone can reap the child, so it is the right process.
	pid := cmd.Process.Pid
	pidfd, err := unix.PidfdOpen(pid, 0)
	go func() { _ = cmd.Wait() }() // reap it should we outlive it
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("emulator: pidfd of %d: %w", pid, err)
	}
	if err := writeFileAtomic(f.pid, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		unix.Close(pidfd)
		_ = cmd.Process.Kill()
		return nil, err
	}
	return &proc{pid: pid, pidfd: pidfd}, nil
}

func (p *proc) signal(sig unix.Signal) error {
	if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("emulator: signal %v to %d: %w", sig, p.pid, err)
	}
	return nil
}

func (p *proc) close() { unix.Close(p.pidfd) }

// await blocks until done reports true, the process p exits, or ctx ends.
// done is checked first and after every file change in dir: the emulator
// publishes by renaming its status file into place.
func (p *proc) await(ctx context.Context, dir string, done func() bool) error {
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("emulator: inotify: %w", err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_DELETE); err != nil {
		return fmt.Errorf("emulator: watch %s: %w", dir, err)
	}
	cancelled, release, err := ctxEventfd(ctx)
	if err != nil {
		return err
	}
	defer release()

	fds := []unix.PollFd{
		{Fd: int32(in), Events: unix.POLLIN},
		{Fd: int32(p.pidfd), Events: unix.POLLIN},
		{Fd: int32(cancelled), Events: unix.POLLIN},
	}
	buf := make([]byte, 4096)
	for {
		if done() {
			return nil
		}
		if fds[1].Revents != 0 {
			return fmt.Errorf("emulator: pid %d: %w", p.pid, errExited)
		}
		if fds[2].Revents != 0 {
			return fmt.Errorf("emulator: waiting for pid %d: %w", p.pid, context.Cause(ctx))
		}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return fmt.Errorf("emulator: poll: %w", err)
		}
		for { // drain; events only mean "look again"
			if n, err := unix.Read(in, buf); n <= 0 || err != nil {
				break
			}
		}
	}
}

// awaitExit blocks until p has exited or ctx ends.
func (p *proc) awaitExit(ctx context.Context, dir string) error {
	err := p.await(ctx, dir, func() bool { return false })
	if errors.Is(err, errExited) {
		return nil
	}
	return err
}

// ctxEventfd returns an eventfd that becomes readable when ctx ends, for
// poll(2). release must be called when done with it.
func ctxEventfd(ctx context.Context) (fd int, release func(), err error) {
	fd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, nil, fmt.Errorf("emulator: eventfd: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	stop := context.AfterFunc(ctx, func() {
		defer wg.Done()
		_, _ = unix.Write(fd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	})
	return fd, func() {
		if stop() {
			wg.Done()
		}
		wg.Wait() // the write must not hit a closed, maybe reused, fd
		unix.Close(fd)
	}, nil
}

// lockFile takes an exclusive flock on path, creating it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("emulator: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("emulator: lock %s: %w", filepath.Base(path), err)
	}
	return func() { f.Close() }, nil
}
