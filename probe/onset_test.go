package probe

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Loss that begins suddenly on a clean link (the emulator switched on, a
// microwave oven) is not a cut: the recent outcomes raise the miss threshold
// before the long window sees the loss. 400 links, each clean for a minute
// and then at 20 % random loss for two: with the threshold from the long
// window alone 8 of them went down (21 with at least 3 misses instead of
// 4); a run of 4 losses as the first loss of all still reads as a cut.
func TestMachineLossOnset(t *testing.T) {
	downs := 0
	for i := range 400 {
		cfg := Config{Interval: 100 * time.Millisecond}
		s := newSim(t, cfg, uint64(i+1))
		r := rand.New(rand.NewPCG(uint64(i), 9))
		onset := t0.Add(60 * time.Second)
		s.run(t0.Add(180*time.Second), func(at time.Time) bool { return at.After(onset) && r.Float64() < 0.2 })
		if len(s.downs) > 0 {
			downs++
		}
	}
	t.Logf("%d of 400 links went down after 20 %% loss began", downs)
	if downs > 2 {
		t.Errorf("%d of 400 links went down after 20 %% loss began, want at most 2 (0.2^4 = 0.16 %% each)", downs)
	}
}
