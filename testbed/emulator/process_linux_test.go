package emulator

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// child starts a process that lives until killed and returns it as a proc.
func child(t *testing.T) *proc {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		unix.Close(pidfd)
	})
	return &proc{pid: cmd.Process.Pid, pidfd: pidfd}
}

func TestAwait(t *testing.T) {
	t.Run("file appears", func(t *testing.T) {
		p, dir := child(t), t.TempDir()
		path := filepath.Join(dir, "status")
		go writeFileAtomic(path, []byte("ok"))
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		err := p.await(ctx, dir, func() bool {
			b, _ := os.ReadFile(path)
			return string(b) == "ok"
		})
		if err != nil {
			t.Fatalf("await() = %v", err)
		}
	})
	t.Run("process exits", func(t *testing.T) {
		p, dir := child(t), t.TempDir()
		if err := p.signal(unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := p.await(ctx, dir, func() bool { return false }); !errors.Is(err, errExited) {
			t.Fatalf("await() = %v, want errExited", err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		p, dir := child(t), t.TempDir()
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := p.await(ctx, dir, func() bool { return false })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("await() = %v, want deadline exceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("await() returned %v after the deadline", d)
		}
	})
}
