package mobility

import (
	"testing"

	"go.uber.org/goleak"
)

// checkGoroutines fails t if goroutines it started are still running after
// goleak's bounded wait. Call it first (its cleanup runs last); not for
// parallel tests, nor inside a synctest bubble.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}
