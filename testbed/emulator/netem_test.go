package emulator

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNetemArgs(t *testing.T) {
	tests := []struct {
		name string
		imp  Impairment
		want string
	}{
		{name: "delay", imp: Impairment{Delay: 50 * time.Millisecond},
			want: "qdisc replace dev eth1 root netem limit 10000 delay 50000us"},
		{name: "delay and jitter", imp: Impairment{Delay: 50 * time.Millisecond, Jitter: 1500 * time.Microsecond},
			want: "qdisc replace dev eth1 root netem limit 10000 delay 50000us 1500us"},
		{name: "jitter alone", imp: Impairment{Jitter: 5 * time.Millisecond},
			want: "qdisc replace dev eth1 root netem limit 10000 delay 0us 5000us"},
		{name: "loss", imp: Impairment{Loss: 20},
			want: "qdisc replace dev eth1 root netem limit 10000 loss 20%"},
		{name: "fractional loss and corrupt", imp: Impairment{Loss: 0.1, Corrupt: 2.5},
			want: "qdisc replace dev eth1 root netem limit 10000 loss 0.1% corrupt 2.5%"},
		{name: "rate", imp: Impairment{RateKbps: 1000},
			want: "qdisc replace dev eth1 root netem limit 10000 rate 1000kbit"},
		{name: "all", imp: Impairment{Delay: time.Second, Jitter: time.Millisecond, Loss: 1, RateKbps: 56, Corrupt: 3},
			want: "qdisc replace dev eth1 root netem limit 10000 delay 1000000us 1000us loss 1% rate 56kbit corrupt 3%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(netemArgs("eth1", tt.imp), " "); got != tt.want {
				t.Errorf("netemArgs() = %q\nwant          %q", got, tt.want)
			}
		})
	}
}

func TestNetemDelArgs(t *testing.T) {
	want := []string{"qdisc", "del", "dev", "eth1", "root"}
	if got := netemDelArgs("eth1"); !slices.Equal(got, want) {
		t.Errorf("netemDelArgs() = %q, want %q", got, want)
	}
}
