package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestRequestsLoggedAtDebug(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level slog.Level
		want  int // records
	}{
		{"debug", slog.LevelDebug, 1},
		{"info", slog.LevelInfo, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
			s, err := NewServer(Config{}, testSrc(), log)
			if err != nil {
				t.Fatal(err)
			}
			do(t, s.Handler(), "GET", "/v1/nope", nil, nil)
			lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != tc.want {
				t.Fatalf("%d log records, want %d:\n%s", len(lines), tc.want, buf.String())
			}
			if tc.want == 0 {
				return
			}
			var rec map[string]any
			if err := json.Unmarshal(lines[0], &rec); err != nil {
				t.Fatal(err)
			}
			for k, v := range map[string]any{
				"level": "DEBUG", "msg": "request", "component": "api",
				"method": "GET", "path": "/v1/nope", "status": float64(404),
			} {
				if rec[k] != v {
					t.Errorf("%s = %v, want %v (record %s)", k, rec[k], v, lines[0])
				}
			}
		})
	}
}
