package apitest

import (
	"testing"

	"go.uber.org/goleak"
)

// CheckGoroutines fails t if goroutines started during the test are still
// running after goleak's bounded wait. Call it first in a test that starts
// servers or clients; do not combine it with t.Parallel.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}
