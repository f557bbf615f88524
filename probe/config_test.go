package probe

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(Config) bool
	}{
		{name: "defaults", cfg: Config{Interval: 100 * ms}, check: func(c Config) bool {
			return c.Window == 100 && c.Target == 1e-6 && c.UpNeed == 4 && c.UpOf == 5 &&
				c.HoldDown == time.Second && c.MaxHoldDown == 16*time.Second && c.FlapWindow == 16*time.Second
		}},
		{name: "no interval", cfg: Config{}, wantErr: `Interval "0s"`},
		{name: "window too big", cfg: Config{Interval: ms, Window: MaxWindow + 1}, wantErr: "Window 1025"},
		{name: "window too small", cfg: Config{Interval: ms, Window: 2}, wantErr: "Window 2"},
		{name: "target", cfg: Config{Interval: ms, Target: 2}, wantErr: "Target 2"},
		{name: "up need above of", cfg: Config{Interval: ms, UpNeed: 6, UpOf: 5}, wantErr: "UpNeed 6 of UpOf 5"},
		{name: "max below hold", cfg: Config{Interval: ms, HoldDown: time.Second, MaxHoldDown: ms}, wantErr: "MaxHoldDown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.cfg.validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "probe: ") {
					t.Fatalf("err %v, want one naming %q", err, tt.wantErr)
				}
				if _, err := NewMachine(tt.cfg); err == nil {
					t.Errorf("NewMachine accepted %+v", tt.cfg)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Errorf("validate = %+v, %v", c, err)
			}
		})
	}
}

func TestNextSend(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	const interval = 100 * time.Millisecond
	lo, hi, sum := interval, time.Duration(0), time.Duration(0)
	const n = 10000
	for range n {
		d := NextSend(interval, r)
		lo, hi, sum = min(lo, d), max(hi, d), sum+d
	}
	if lo < 75*time.Millisecond || hi > interval {
		t.Errorf("NextSend ranged %v..%v, want within 75ms..100ms", lo, hi)
	}
	if lo > 76*time.Millisecond || hi < 99*time.Millisecond {
		t.Errorf("NextSend ranged %v..%v, want it to cover 75ms..100ms", lo, hi)
	}
	if mean := sum / n; mean < 86*time.Millisecond || mean > 89*time.Millisecond {
		t.Errorf("mean %v, want about 87.5ms", mean)
	}
	// The same source gives the same delays.
	a, b := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(1, 1))
	for range 10 {
		if NextSend(interval, a) != NextSend(interval, b) {
			t.Fatal("NextSend differs for equal sources")
		}
	}
}
