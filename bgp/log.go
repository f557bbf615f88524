package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// logAdapter implements GoBGP's pkg/log.Logger on top of slog. GoBGP's Fatal
// and Panic do not exit or panic here: they are logged at Error and recorded,
// and the speaker's Run returns the recorded failure.
type logAdapter struct {
	log *slog.Logger

	mu    sync.Mutex
	level gobgplog.LogLevel
	fatal error             // first Fatal or Panic seen
	fired chan struct{}     // closed when fatal is first set
	down  map[string]string // neighbour address -> last "Peer Down" reason
}

var _ gobgplog.Logger = (*logAdapter)(nil)

func newLogAdapter(l *slog.Logger) *logAdapter {
	return &logAdapter{log: l, level: gobgplog.InfoLevel, fired: make(chan struct{}), down: make(map[string]string)}
}

// slogLevel maps GoBGP's (logrus) levels to slog levels. Trace folds into Debug.
func slogLevel(l gobgplog.LogLevel) slog.Level {
	switch l {
	case gobgplog.PanicLevel, gobgplog.FatalLevel, gobgplog.ErrorLevel:
		return slog.LevelError
	case gobgplog.WarnLevel:
		return slog.LevelWarn
	case gobgplog.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// attrs turns GoBGP's fields into slog attributes in a stable (sorted) order.
func attrs(fields gobgplog.Fields) []slog.Attr {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		v := fields[k]
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		out = append(out, slog.Any(k, v))
	}
	return out
}

func (a *logAdapter) emit(l gobgplog.LogLevel, msg string, fields gobgplog.Fields) {
	a.log.LogAttrs(context.Background(), slogLevel(l), msg, attrs(fields)...)
}

func (a *logAdapter) record(kind, msg string, fields gobgplog.Fields) {
	err := fmt.Errorf("bgp: gobgp %s: %s", kind, msg)
	if e, ok := fields["Err"].(error); ok {
		err = fmt.Errorf("bgp: gobgp %s: %s: %w", kind, msg, e)
	} else if e, ok := fields["Error"].(error); ok {
		err = fmt.Errorf("bgp: gobgp %s: %s: %w", kind, msg, e)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fatal == nil {
		a.fatal = err
		close(a.fired)
	}
}

// failed returns the first recorded Fatal/Panic, or nil.
func (a *logAdapter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fatal
}

// Panic is logged at Error and recorded; it does not panic.
func (a *logAdapter) Panic(msg string, fields gobgplog.Fields) {
	a.emit(gobgplog.PanicLevel, msg, fields)
	a.record("panic", msg, fields)
}

// Fatal is logged at Error and recorded; it does not exit the process.
func (a *logAdapter) Fatal(msg string, fields gobgplog.Fields) {
	a.emit(gobgplog.FatalLevel, msg, fields)
	a.record("fatal", msg, fields)
}

func (a *logAdapter) Error(msg string, fields gobgplog.Fields) {
	a.emit(gobgplog.ErrorLevel, msg, fields)
}

func (a *logAdapter) Warn(msg string, fields gobgplog.Fields) {
	a.emit(gobgplog.WarnLevel, msg, fields)
}

// Info passes the message on and remembers the reason of GoBGP's "Peer
// Down" line (logged just before the state change is published), which
// GoBGP's peer events do not carry.
func (a *logAdapter) Info(msg string, fields gobgplog.Fields) {
	a.emit(gobgplog.InfoLevel, msg, fields)
	if msg == "Peer Down" {
		key, _ := fields["Key"].(string)
		reason, _ := fields["Reason"].(string)
		if key != "" && reason != "" {
			a.mu.Lock()
			a.down[key] = reason
			a.mu.Unlock()
		}
	}
}

// takeDownReason returns and forgets the last "Peer Down" reason logged for
// neighbour key ("" if none).
func (a *logAdapter) takeDownReason(key string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.down[key]
	delete(a.down, key)
	return r
}

// Debug is passed on at slog Debug; the slog handler decides whether it shows.
func (a *logAdapter) Debug(msg string, fields gobgplog.Fields) {
	a.emit(gobgplog.DebugLevel, msg, fields)
}

// SetLevel records the level GoBGP asks for (gobgp CLI "log level"); filtering
// is left to the slog handler.
func (a *logAdapter) SetLevel(level gobgplog.LogLevel) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.level = level
}

// GetLevel reports the level last set. GoBGP checks it before building
// expensive debug fields, so it stays at Info unless raised.
func (a *logAdapter) GetLevel() gobgplog.LogLevel {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.level
}
