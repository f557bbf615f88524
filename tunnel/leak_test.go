package tunnel

import (
	"runtime"
	"testing"
	"time"
)

// checkGoroutines fails t if it ends with more goroutines than it started
// with. Call it first (its cleanup runs last); not for parallel tests.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if after := runtime.NumGoroutine(); after > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutines leaked: %d before, %d after:\n%s", before, after, buf)
		}
	})
}
