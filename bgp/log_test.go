package bgp

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"testing"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

func TestLogAdapter(t *testing.T) {
	sysErr := errors.New("address already in use")
	tests := []struct {
		name      string
		call      func(l gobgplog.Logger)
		wantLevel string
		wantMsg   string
		wantAttrs map[string]any
		wantFatal bool
	}{
		{"debug", func(l gobgplog.Logger) { l.Debug("d", gobgplog.Fields{"Topic": "Peer"}) }, "DEBUG", "d", map[string]any{"Topic": "Peer"}, false},
		{"info", func(l gobgplog.Logger) { l.Info("i", gobgplog.Fields{"Key": "10.0.0.1", "n": 3}) }, "INFO", "i", map[string]any{"Key": "10.0.0.1", "n": float64(3)}, false},
		{"warn", func(l gobgplog.Logger) { l.Warn("w", nil) }, "WARN", "w", nil, false},
		{"error with error field", func(l gobgplog.Logger) { l.Error("e", gobgplog.Fields{"Error": sysErr}) }, "ERROR", "e", map[string]any{"Error": "address already in use"}, false},
		{"fatal does not exit", func(l gobgplog.Logger) { l.Fatal("failed to listen grpc port", gobgplog.Fields{"Err": sysErr}) }, "ERROR", "failed to listen grpc port", map[string]any{"Err": "address already in use"}, true},
		{"panic does not panic", func(l gobgplog.Logger) { l.Panic("p", nil) }, "ERROR", "p", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			a := newLogAdapter(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
			tt.call(a)
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("log output %q: %v", buf.String(), err)
			}
			if rec["level"] != tt.wantLevel || rec["msg"] != tt.wantMsg {
				t.Errorf("level, msg = %v, %v; want %v, %v", rec["level"], rec["msg"], tt.wantLevel, tt.wantMsg)
			}
			for k, v := range tt.wantAttrs {
				if rec[k] != v {
					t.Errorf("attr %s = %#v, want %#v", k, rec[k], v)
				}
			}
			err := a.failed()
			if (err != nil) != tt.wantFatal {
				t.Fatalf("failed() = %v, want fatal %v", err, tt.wantFatal)
			}
			select {
			case <-a.fired:
				if !tt.wantFatal {
					t.Error("fired closed without a fatal")
				}
			default:
				if tt.wantFatal {
					t.Error("fired not closed after a fatal")
				}
			}
		})
	}
}

func TestLogAdapterFirstFatalWins(t *testing.T) {
	a := newLogAdapter(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	first := &net.OpError{Op: "listen", Err: errors.New("bind: address already in use")}
	a.Fatal("failed to listen grpc port", gobgplog.Fields{"Err": first})
	a.Fatal("unknown msg type", nil)
	err := a.failed()
	if !errors.Is(err, first) {
		t.Fatalf("failed() = %v, want it to wrap the first fatal's error", err)
	}
	if want := "bgp: gobgp fatal: failed to listen grpc port: listen: bind: address already in use"; err.Error() != want {
		t.Errorf("failed() = %q, want %q", err, want)
	}
}

func TestLogAdapterLevel(t *testing.T) {
	a := newLogAdapter(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if got := a.GetLevel(); got != gobgplog.InfoLevel {
		t.Errorf("initial level %v, want info", got)
	}
	a.SetLevel(gobgplog.DebugLevel)
	if got := a.GetLevel(); got != gobgplog.DebugLevel {
		t.Errorf("level after SetLevel(debug) = %v", got)
	}
	for l, want := range map[gobgplog.LogLevel]slog.Level{
		gobgplog.PanicLevel: slog.LevelError, gobgplog.FatalLevel: slog.LevelError,
		gobgplog.ErrorLevel: slog.LevelError, gobgplog.WarnLevel: slog.LevelWarn,
		gobgplog.InfoLevel: slog.LevelInfo, gobgplog.DebugLevel: slog.LevelDebug,
		gobgplog.TraceLevel: slog.LevelDebug,
	} {
		if got := slogLevel(l); got != want {
			t.Errorf("slogLevel(%v) = %v, want %v", l, got, want)
		}
	}
}
