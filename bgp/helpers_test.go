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

// logRecord is one recorded log line: level, message and attributes as text.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logRecorder is a slog.Handler that keeps every record and passes it on to
// the test log.
type logRecorder struct {
	next  slog.Handler
	attrs []slog.Attr
	mu    *sync.Mutex
	recs  *[]logRecord
}

// recordingLogger returns a logger like testLogger's whose records can be
// inspected.
func recordingLogger(t *testing.T, name string) (*slog.Logger, *logRecorder) {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	r := &logRecorder{
		next: slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}),
		mu:   new(sync.Mutex), recs: new([]logRecord),
	}
	return slog.New(r).With("speaker", name), r
}

func (r *logRecorder) Enabled(ctx context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	lr := logRecord{level: rec.Level, msg: rec.Message, attrs: make(map[string]string)}
	for _, a := range r.attrs {
		lr.attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	*r.recs = append(*r.recs, lr)
	r.mu.Unlock()
	return r.next.Handle(ctx, rec)
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), as...)
	c.next = r.next.WithAttrs(as)
	return &c
}

func (r *logRecorder) WithGroup(name string) slog.Handler {
	c := *r
	c.next = r.next.WithGroup(name)
	return &c
}

// find returns the records with message msg whose attributes include want.
func (r *logRecorder) find(msg string, want map[string]string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
next:
	for _, rec := range *r.recs {
		if rec.msg != msg {
			continue
		}
		for k, v := range want {
			if rec.attrs[k] != v {
				continue next
			}
		}
		out = append(out, rec)
	}
	return out
}

const (
	slogInfo = slog.LevelInfo
	slogWarn = slog.LevelWarn
)
