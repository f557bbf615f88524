package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Loss patterns recorded in the testbed (testdata/loss/*.txt: one
// character per probe, '.' answered, 'x' lost; see the README there),
// replayed through a Machine on the fast profile. A pattern whose name says
// "nodown" must never take the link down; one that says "cut" has one
// outage, which must be declared once, within K intervals of its start plus
// a timeout, and the link must come back.
func TestMachineRecordedPatterns(t *testing.T) {
	files, err := filepath.Glob("testdata/loss/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded patterns in testdata/loss (%v)", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pattern := strings.Map(func(r rune) rune {
				if r == '.' || r == 'x' {
					return r
				}
				return -1
			}, string(data))
			cfg := Config{Interval: 100 * time.Millisecond}
			s := newSim(t, cfg, 5)
			i := 0
			lost := func(time.Time) bool {
				l := i < len(pattern) && pattern[i] == 'x'
				i++
				return l
			}
			// Until the pattern is used up (sends are 75-100 ms apart).
			for end := t0; i < len(pattern); {
				end = end.Add(cfg.Interval)
				s.run(end, lost)
			}
			t.Logf("%d probes, %.1f %% lost, ups %d downs %d, loss estimate %.3f", len(pattern),
				100*float64(strings.Count(pattern, "x"))/float64(len(pattern)), len(s.ups), len(s.downs), s.last.Loss)
			switch {
			case strings.Contains(name, "nodown"):
				if len(s.downs) != 0 {
					t.Errorf("downs at %v, want none", s.downs)
				}
			case strings.Contains(name, "cut"):
				start := strings.Index(pattern, strings.Repeat("x", 30))
				if len(s.downs) != 1 || start < 0 {
					t.Fatalf("downs at %v (outage at probe %d), want one", s.downs, start)
				}
				if d := s.downs[0].Sub(t0.Add(time.Duration(start) * cfg.Interval)); d > time.Duration(s.downK[0]+2)*cfg.Interval {
					t.Errorf("down %v after the outage began, want within K=%d intervals and a timeout", d, s.downK[0])
				}
				if len(s.ups) != 2 {
					t.Errorf("ups %v, want the first and one after the outage", s.ups)
				}
			}
		})
	}
}
