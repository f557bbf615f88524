package tunnel

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs to slog: its errors and warnings at Debug
// (pion warns about every unanswered check and every unknown STUN sender,
// which on a node that moves is routine), the rest dropped unless Debug is
// on.
type pionLogs struct{ log *slog.Logger }

func (f *pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l *pionLogger) logf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l *pionLogger) Trace(string)                   {}
func (l *pionLogger) Tracef(string, ...any)          {}
func (l *pionLogger) Debug(msg string)               { l.logf("%s", msg) }
func (l *pionLogger) Debugf(format string, a ...any) { l.logf(format, a...) }
func (l *pionLogger) Info(msg string)                { l.logf("%s", msg) }
func (l *pionLogger) Infof(format string, a ...any)  { l.logf(format, a...) }
func (l *pionLogger) Warn(msg string)                { l.logf("%s", msg) }
func (l *pionLogger) Warnf(format string, a ...any)  { l.logf(format, a...) }
func (l *pionLogger) Error(msg string)               { l.logf("%s", msg) }
func (l *pionLogger) Errorf(format string, a ...any) { l.logf(format, a...) }
