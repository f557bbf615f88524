package emulator

import (
	"math"
	"testing"
	"time"
)

func TestImpairmentValidate(t *testing.T) {
	tests := []struct {
		name string
		imp  Impairment
		want string // "" = valid
	}{
		{name: "zero", imp: Impairment{}},
		{name: "all set", imp: Impairment{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 10, RateKbps: 1000, Corrupt: 0.5}},
		{name: "jitter above delay", imp: Impairment{Delay: time.Millisecond, Jitter: 5 * time.Millisecond}},
		{name: "bounds", imp: Impairment{Delay: time.Minute, Jitter: time.Minute, Loss: 100, Corrupt: 100}},
		{name: "negative delay", imp: Impairment{Delay: -5 * time.Millisecond}, want: "emulator: delay -5ms out of range 0..1m0s"},
		{name: "huge delay", imp: Impairment{Delay: time.Hour}, want: "emulator: delay 1h0m0s out of range 0..1m0s"},
		{name: "negative jitter", imp: Impairment{Jitter: -time.Millisecond}, want: "emulator: jitter -1ms out of range 0..1m0s"},
		{name: "loss above 100", imp: Impairment{Loss: 120}, want: "emulator: loss 120 out of range 0..100"},
		{name: "negative loss", imp: Impairment{Loss: -0.5}, want: "emulator: loss -0.5 out of range 0..100"},
		{name: "NaN loss", imp: Impairment{Loss: math.NaN()}, want: "emulator: loss NaN out of range 0..100"},
		{name: "corrupt above 100", imp: Impairment{Corrupt: 101}, want: "emulator: corrupt 101 out of range 0..100"},
		{name: "infinite corrupt", imp: Impairment{Corrupt: math.Inf(1)}, want: "emulator: corrupt +Inf out of range 0..100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.imp.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestImpairmentString(t *testing.T) {
	tests := []struct {
		name string
		imp  Impairment
		want string
	}{
		{name: "zero", imp: Impairment{}, want: "none"},
		{name: "delay", imp: Impairment{Delay: 50 * time.Millisecond}, want: "delay 50ms"},
		{name: "all", imp: Impairment{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 10, RateKbps: 1000, Corrupt: 0.5},
			want: "delay 50ms jitter 5ms loss 10% rate 1000kbit corrupt 0.5%"},
		{name: "loss only", imp: Impairment{Loss: 0.25}, want: "loss 0.25%"},
		{name: "rate only", imp: Impairment{RateKbps: 64}, want: "rate 64kbit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.imp.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := tt.imp.IsZero(); got != (tt.want == "none") {
				t.Errorf("IsZero() = %v for %q", got, tt.want)
			}
		})
	}
}
