package apitest

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// CheckGoroutines fails t if goroutines started during the test are still
// running shortly after it ends (it waits up to 5 s for them to exit). Call
// it first in a test that starts servers or clients; do not combine it with
// t.Parallel.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		var left []string
		for deadline := time.Now().Add(5 * time.Second); ; {
			left = left[:0]
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok {
					left = append(left, stack)
				}
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(left) > 0 {
			slices.Sort(left)
			t.Errorf("%d goroutine(s) leaked:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
	})
}

// goroutines returns the stacks of the running goroutines by their header
// line ("goroutine 12"), leaving out the test framework's own.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	m := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, stack, ok := strings.Cut(g, "\n")
		if !ok || ignored(stack) {
			continue
		}
		id, _, _ := strings.Cut(header, " [")
		m[id] = g
	}
	return m
}

// ignored reports goroutines of the test framework (a subtest that runs
// concurrently) and of the check itself.
func ignored(stack string) bool {
	return strings.Contains(stack, "apitest.goroutines(") ||
		strings.Contains(stack, "\ncreated by testing.(*T).Run") ||
		strings.Contains(stack, "\ncreated by testing.(*F).Fuzz")
}
