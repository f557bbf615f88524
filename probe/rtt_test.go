package probe

import (
	"testing"
	"time"
)

func TestRTTAdd(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []time.Duration
		srtt    time.Duration
		rttvar  time.Duration
		n       int
	}{
		{name: "none", samples: nil, srtt: 0, rttvar: 0, n: 0},
		{name: "first sets srtt and half rttvar", samples: []time.Duration{100 * ms}, srtt: 100 * ms, rttvar: 50 * ms, n: 1},
		// RTTVAR = 3/4*50 + 1/4*|100-180| = 57.5; SRTT = 7/8*100 + 1/8*180 = 110.
		{name: "second uses old srtt", samples: []time.Duration{100 * ms, 180 * ms}, srtt: 110 * ms, rttvar: 57500 * time.Microsecond, n: 2},
		// RTTVAR = 3/4*50 + 1/4*|100-20| = 57.5; SRTT = 7/8*100 + 1/8*20 = 90.
		{name: "lower sample", samples: []time.Duration{100 * ms, 20 * ms}, srtt: 90 * ms, rttvar: 57500 * time.Microsecond, n: 2},
		{name: "equal samples shrink rttvar", samples: []time.Duration{40 * ms, 40 * ms, 40 * ms}, srtt: 40 * ms, rttvar: 11250 * time.Microsecond, n: 3},
		{name: "negative ignored", samples: []time.Duration{40 * ms, -5 * ms}, srtt: 40 * ms, rttvar: 20 * ms, n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r RTT
			for _, s := range tt.samples {
				r = r.Add(s)
			}
			if r.SRTT != tt.srtt || r.RTTVar != tt.rttvar || r.Samples != tt.n {
				t.Errorf("got SRTT %v RTTVar %v Samples %d, want %v %v %d", r.SRTT, r.RTTVar, r.Samples, tt.srtt, tt.rttvar, tt.n)
			}
		})
	}
}

func TestRTTConverges(t *testing.T) {
	var r RTT
	for range 200 {
		r = r.Add(40 * time.Millisecond)
	}
	if d := r.SRTT - 40*time.Millisecond; d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("SRTT %v after 200 samples of 40ms", r.SRTT)
	}
	if r.RTTVar > time.Microsecond {
		t.Errorf("RTTVar %v after 200 equal samples", r.RTTVar)
	}
}

func TestRTTRTO(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		r        RTT
		g, floor time.Duration
		want     time.Duration
	}{
		{name: "no sample gives floor", r: RTT{}, g: ms, floor: 100 * ms, want: 100 * ms},
		{name: "srtt plus 4 rttvar", r: RTT{SRTT: 100 * ms, RTTVar: 50 * ms, Samples: 1}, g: ms, floor: 10 * ms, want: 300 * ms},
		{name: "granularity when rttvar tiny", r: RTT{SRTT: 100 * ms, RTTVar: 0, Samples: 5}, g: 10 * ms, floor: 0, want: 110 * ms},
		{name: "floor wins", r: RTT{SRTT: 1 * ms, RTTVar: 0, Samples: 5}, g: ms, floor: 100 * ms, want: 100 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.RTO(tt.g, tt.floor); got != tt.want {
				t.Errorf("RTO = %v, want %v", got, tt.want)
			}
		})
	}
}
