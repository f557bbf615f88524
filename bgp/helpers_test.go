package bgp

import (
	"context"
	"go.uber.org/goleak"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLogger logs through t.Log until the test ends; GoBGP goroutines that
// outlive the test (its Serve loop) are silenced instead of panicking.
func testLogger(t *testing.T, name string) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("speaker", name)
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every 100ms until it returns "" or timeout passes,
// then fails with the last reason.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkNoLeaks fails if goroutines started since before are still running
// after goleak's bounded wait, other than GoBGP v3.37.0's
// (*BgpServer).Serve loop, which has no way to return (one per speaker).
func checkNoLeaks(t *testing.T, before goleak.Option) {
	t.Helper()
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).Serve"))
}

// runSpeaker runs s until the test's cleanup cancels it; the returned stop
// function cancels and returns Run's error.
func runSpeaker(t *testing.T, s *Speaker) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return 20s after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}
