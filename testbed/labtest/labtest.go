// Package labtest runs roamlab labs from tests: the root check that never
// skips under CI, the roamlab binary, and deploys that are always destroyed.
package labtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireRoot skips a test that needs root when not root, except under
// CI=true, where it fails: CI runs as root and must run every lab test.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (network namespaces); CI=true runs as root and never skips")
	}
	t.Skip("needs root (network namespaces)")
}

var (
	buildOnce sync.Once
	buildErr  error
)

// Roamlab returns the roamlab binary: $ROAMLAB_BIN (make test sets it after
// building bin/), or bin/roamlab built by BuildBinaries.
func Roamlab(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ROAMLAB_BIN"); p != "" {
		return p
	}
	BuildBinaries(t)
	return filepath.Join(RepoRoot(), "bin", "roamlab")
}

// BuildBinaries makes sure bin/ holds this checkout's commands (the labs run
// bin/roamd and bin/roamctl). Under make test (ROAMLAB_BIN set) make built
// them; otherwise they are built once per test process, under a lock shared
// with the other test processes.
func BuildBinaries(t testing.TB) {
	t.Helper()
	if os.Getenv("ROAMLAB_BIN") != "" {
		return
	}
	buildOnce.Do(func() {
		bin := filepath.Join(RepoRoot(), "bin")
		if buildErr = os.MkdirAll(bin, 0o755); buildErr != nil {
			return
		}
		lock, err := os.OpenFile(filepath.Join(bin, ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			buildErr = err
			return
		}
		defer lock.Close()
		if buildErr = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); buildErr != nil {
			return
		}
		// Our commands, the stock gobgp CLI the labs query roamd with, and
		// gobgpd, an external router in the interop labs.
		for _, args := range [][]string{
			{"build", "-o", bin + "/", "./cmd/..."},
			{"build", "-o", bin + "/", "github.com/osrg/gobgp/v3/cmd/gobgp", "github.com/osrg/gobgp/v3/cmd/gobgpd"},
		} {
			cmd := exec.Command("go", args...)
			cmd.Dir = RepoRoot()
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.New(string(out))
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build bin/: %v", buildErr)
	}
}

// RepoRoot is the checkout this package is in.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Result is what a roamlab command printed and how it exited.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs roamlab with args (bounded to two minutes) and returns what it did.
func Run(t testing.TB, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Roamlab(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("roamlab %s: %v", strings.Join(args, " "), err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("roamlab %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// MustRun runs roamlab and fails the test unless it exits 0.
func MustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := Run(t, args...)
	if r.Code != 0 {
		t.Fatalf("roamlab %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Deploy deploys the lab in file and destroys it when the test ends, pass or fail.
func Deploy(t testing.TB, file string) {
	t.Helper()
	RequireRoot(t)
	// A failed deploy cleans up after itself; registering destroy only after
	// success means a lab someone else deployed under that name is left alone.
	MustRun(t, "deploy", "-t", file)
	t.Cleanup(func() {
		if r := Run(t, "destroy", "-t", file); r.Code != 0 {
			t.Errorf("destroy %s: exit %d: %s", file, r.Code, r.Stderr)
		}
	})
}

// LabFile is the path of a shipped lab, testbed/labs/<name>.clab.yml.
func LabFile(name string) string {
	return filepath.Join(RepoRoot(), "testbed", "labs", name+".clab.yml")
}
