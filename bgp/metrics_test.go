package bgp

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

// gather collects through a registry, as the daemon's /metrics does, and
// lints our metrics (testutil.CollectAndLint would need a module go.mod does
// not have; promlint is what it runs). GoBGP's bgp_* metrics are passed
// through as GoBGP makes them, lint problems included (gauges typed as
// counters: bgp_peer_uptime, bgp_peer_out_queue_count, ...).
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "roam_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	out := make(map[string]*dto.MetricFamily)
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func counterValue(mf *dto.MetricFamily, label, value string) float64 {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// TestCollector: GoBGP's metrics only while Run runs, the update counter
// always, both in step with what Updates delivered.
func TestCollector(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a, newB := grPair(t, false)
	b := newB("B", false)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(a.s.Collector()); err != nil {
		t.Fatalf("Register before Run: %v", err)
	}
	mfs := gather(t, reg)
	if _, ok := mfs["bgp_peer_state"]; ok || len(mfs) != 1 || counterValue(mfs["roam_bgp_updates_total"], "action", "best") != 0 {
		t.Errorf("before Run: %v, want only roam_bgp_updates_total at 0", mfs)
	}
	// Collected all along, while A's Run starts and stops; paused while B
	// starts (GoBGP's StartBgp writes globals that A's ListPeer reads, see
	// startNodes).
	done := make(chan struct{})
	collecting := make(chan struct{})
	var pause sync.Mutex
	go func() {
		defer close(collecting)
		for {
			select {
			case <-done:
				return
			default:
			}
			pause.Lock()
			if _, err := reg.Gather(); err != nil {
				t.Errorf("Gather while running: %v", err)
			}
			pause.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	startNodes(t, a)
	pause.Lock()
	startNodes(t, b)
	a.neighbor(t, addrB)
	pause.Unlock()
	a.waitState(t, addrB, true)
	a.waitRoute(t, podGR, addrB, ovlB)
	if err := b.s.Withdraw(t.Context(), podGR); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if ev, _ := a.events.get(podGR); !ev.Withdrawn {
			return "A has not delivered the withdrawal"
		}
		return ""
	})
	// A delivered its own podA4, B's podGR, then podGR's withdrawal; the
	// counter moves just after each delivery.
	eventually(t, 5*time.Second, func() string {
		a.events.mu.Lock()
		best, withdraw := 0, 0
		for _, ev := range a.events.all {
			if ev.Withdrawn {
				withdraw++
			} else {
				best++
			}
		}
		a.events.mu.Unlock()
		mfs = gather(t, reg)
		if got := counterValue(mfs["roam_bgp_updates_total"], "action", "best"); got != float64(best) || best < 2 {
			return fmt.Sprintf("roam_bgp_updates_total{action=best} = %v, want %d delivered", got, best)
		}
		if got := counterValue(mfs["roam_bgp_updates_total"], "action", "withdraw"); got != float64(withdraw) || withdraw != 1 {
			return fmt.Sprintf("roam_bgp_updates_total{action=withdraw} = %v, want %d delivered", got, withdraw)
		}
		return ""
	})
	state, ok := mfs["bgp_peer_state"]
	if !ok || len(state.GetMetric()) != 1 || !strings.Contains(fmt.Sprint(state.GetMetric()[0].GetLabel()), "ESTABLISHED") {
		t.Errorf("bgp_peer_state while running = %v, want B established", state)
	}
	for _, n := range []*node{b, a} {
		if err := n.stop(); err != nil {
			t.Errorf("%s: %v", n.name, err)
		}
	}
	close(done)
	<-collecting
	mfs = gather(t, reg)
	if _, ok := mfs["bgp_peer_state"]; ok || counterValue(mfs["roam_bgp_updates_total"], "action", "withdraw") != 1 {
		t.Errorf("after Run: %v, want only roam_bgp_updates_total, kept", mfs)
	}
	checkNoLeaks(t, before)
}
