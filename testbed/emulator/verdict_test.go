package emulator

import (
	"bytes"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"
)

func testRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestDecide(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	tests := []struct {
		name   string
		imp    Impairment
		last   time.Time
		size   int
		queued int
		want   verdict
	}{
		{name: "nothing", size: 100, want: verdict{depart: now}},
		{name: "delay", imp: Impairment{Delay: 50 * ms}, size: 100, want: verdict{depart: now.Add(50 * ms)}},
		{name: "full loss", imp: Impairment{Loss: 100}, want: verdict{fate: fateLost}},
		{name: "queue full", imp: Impairment{Delay: ms}, queued: queueLimit, want: verdict{fate: fateQueueFull}},
		{name: "loss before queue limit", imp: Impairment{Loss: 100}, queued: queueLimit, want: verdict{fate: fateLost}},
		{name: "one below the limit", imp: Impairment{Delay: ms}, queued: queueLimit - 1, want: verdict{depart: now.Add(ms)}},
		{name: "full corrupt", imp: Impairment{Corrupt: 100}, want: verdict{corrupt: true, depart: now}},
		// 1250 bytes = 10 000 bit = 10 ms at 1000 kbit/s.
		{name: "rate idle link", imp: Impairment{RateKbps: 1000}, size: 1250, last: now.Add(-time.Second), want: verdict{depart: now.Add(10 * ms)}},
		{name: "rate behind queued frame", imp: Impairment{RateKbps: 1000}, size: 1250, last: now.Add(7 * ms), want: verdict{depart: now.Add(17 * ms)}},
		{name: "rate and delay, queue shorter than delay", imp: Impairment{Delay: 5 * ms, RateKbps: 1000}, size: 1250, last: now.Add(2 * ms),
			want: verdict{depart: now.Add(15 * ms)}},
		{name: "rate and delay, queue longer than delay", imp: Impairment{Delay: 5 * ms, RateKbps: 1000}, size: 1250, last: now.Add(30 * ms),
			want: verdict{depart: now.Add(40 * ms)}},
		{name: "rate 8 kbit, 1 byte", imp: Impairment{RateKbps: 8}, size: 1, want: verdict{depart: now.Add(ms)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.imp, now, tt.last, tt.size, tt.queued, testRand())
			if got.fate != tt.want.fate || got.corrupt != tt.want.corrupt ||
				(got.fate == fateSend && !got.depart.Equal(tt.want.depart)) {
				t.Errorf("decide() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDecideRates checks the random choices against their percentages over
// many frames with a fixed seed.
func TestDecideRates(t *testing.T) {
	const n = 100_000
	rng := testRand()
	imp := Impairment{Loss: 20, Corrupt: 5}
	var lost, corrupt, sent int
	for range n {
		switch v := decide(imp, time.Time{}, time.Time{}, 100, 0, rng); {
		case v.fate == fateLost:
			lost++
		case v.corrupt:
			corrupt++
			sent++
		default:
			sent++
		}
	}
	if got := 100 * float64(lost) / n; got < 19.5 || got > 20.5 {
		t.Errorf("lost %.2f%% of frames, want 20%%", got)
	}
	if got := 100 * float64(corrupt) / float64(sent); got < 4.7 || got > 5.3 {
		t.Errorf("corrupted %.2f%% of sent frames, want 5%%", got)
	}
}

func TestDecideJitter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name          string
		delay, jitter time.Duration
		min, max      time.Duration // observed bounds must lie within [min, max)
		mean          time.Duration
	}{
		{name: "jitter below delay", delay: 50 * ms, jitter: 5 * ms, min: 45 * ms, max: 55 * ms, mean: 50 * ms},
		// Uniform in [-2ms, 4ms), negative clamped to 0: mean 4/6 * 2ms.
		{name: "jitter above delay", delay: 1 * ms, jitter: 3 * ms, min: 0, max: 4 * ms, mean: 4 * ms / 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 20_000
			rng := testRand()
			imp := Impairment{Delay: tt.delay, Jitter: tt.jitter}
			var lo, hi, sum time.Duration = time.Hour, -time.Hour, 0
			for range n {
				d := decide(imp, time.Time{}, time.Time{}, 100, 0, rng).depart.Sub(time.Time{})
				lo, hi, sum = min(lo, d), max(hi, d), sum+d
			}
			if lo < tt.min || hi >= tt.max {
				t.Errorf("delays span [%v, %v], want within [%v, %v)", lo, hi, tt.min, tt.max)
			}
			if spread := tt.max - tt.min; hi-lo < spread*9/10 {
				t.Errorf("delays span only [%v, %v] of [%v, %v): not uniform", lo, hi, tt.min, tt.max)
			}
			if mean := sum / n; (mean - tt.mean).Abs() > 100*time.Microsecond {
				t.Errorf("mean delay %v, want %v", mean, tt.mean)
			}
		})
	}
}

func TestCorruptFrame(t *testing.T) {
	mac := bytes.Repeat([]byte{0xaa}, 12)
	ipv4 := func(ihlWords byte, payload int) []byte {
		h := make([]byte, int(ihlWords)*4)
		h[0] = 0x40 | ihlWords
		return append(h, make([]byte, payload)...)
	}
	frame := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		frame   []byte
		payload int // offset of the IP payload; -1 = must stay untouched
	}{
		{name: "ipv4", frame: frame(mac, []byte{0x08, 0x00}, ipv4(5, 8)), payload: 34},
		{name: "ipv4 with options", frame: frame(mac, []byte{0x08, 0x00}, ipv4(6, 8)), payload: 38},
		{name: "ipv6", frame: frame(mac, []byte{0x86, 0xdd}, make([]byte, 40), make([]byte, 8)), payload: 54},
		{name: "vlan ipv4", frame: frame(mac, []byte{0x81, 0x00, 0, 1, 0x08, 0x00}, ipv4(5, 8)), payload: 38},
		{name: "qinq ipv4", frame: frame(mac, []byte{0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00}, ipv4(5, 8)), payload: 42},
		{name: "arp", frame: frame(mac, []byte{0x08, 0x06}, make([]byte, 28)), payload: -1},
		{name: "ipv4 without payload", frame: frame(mac, []byte{0x08, 0x00}, ipv4(5, 0)), payload: -1},
		{name: "ipv4 bad ihl", frame: frame(mac, []byte{0x08, 0x00}, []byte{0x42}, make([]byte, 30)), payload: -1},
		{name: "truncated ipv6", frame: frame(mac, []byte{0x86, 0xdd}, make([]byte, 39)), payload: -1},
		{name: "runt", frame: mac[:10], payload: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := testRand()
			for range 200 {
				f := bytes.Clone(tt.frame)
				flipped := corruptFrame(f, rng)
				if flipped != (tt.payload >= 0) {
					t.Fatalf("corruptFrame() = %v, want %v", flipped, tt.payload >= 0)
				}
				diff := 0
				for i := range f {
					if f[i] != tt.frame[i] {
						diff += bits.OnesCount8(f[i] ^ tt.frame[i])
						if i < tt.payload {
							t.Fatalf("flipped a bit in byte %d, inside the headers (payload at %d)", i, tt.payload)
						}
					}
				}
				if want := map[bool]int{true: 1, false: 0}[flipped]; diff != want {
					t.Fatalf("%d bits differ, want %d", diff, want)
				}
			}
		})
	}
}

func TestSerialisation(t *testing.T) {
	tests := []struct {
		size int
		kbps uint64
		want time.Duration
	}{
		{size: 1514, kbps: 1000, want: 12112 * time.Microsecond},
		{size: 125, kbps: 1_000_000, want: time.Microsecond},
		{size: 64, kbps: 1, want: 512 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := serialisation(tt.size, tt.kbps); got != tt.want {
			t.Errorf("serialisation(%d, %d) = %v, want %v", tt.size, tt.kbps, got, tt.want)
		}
	}
}
