package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/probe"
)

// qualityPump hands the prober's link changes to BGP: a peer going down or
// up at once, cost changes at most once per every per peer, the latest
// winning. Its Run goroutine owns what was applied; offer may be called from
// any goroutine.
type qualityPump struct {
	set   func(context.Context, netip.Addr, bgp.Quality) error
	every time.Duration
	log   *slog.Logger
	kick  chan struct{}

	// mu guards pending.
	mu      sync.Mutex
	pending map[netip.Addr]bgp.Quality
}

func newQualityPump(set func(context.Context, netip.Addr, bgp.Quality) error, every time.Duration, log *slog.Logger) *qualityPump {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &qualityPump{set: set, every: every, log: log, kick: make(chan struct{}, 1), pending: make(map[netip.Addr]bgp.Quality)}
}

// offer records a link's latest state and cost (probe.ProberConfig.OnChange).
func (q *qualityPump) offer(l probe.Link) {
	want := bgp.Quality{Down: l.State != probe.Up, Cost: uint16(l.Cost)}
	if want.Down {
		want.Cost = 0 // the session is down: no cost to carry
	}
	q.mu.Lock()
	q.pending[l.Target.Addr.Addr()] = want
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Run applies what was offered until ctx is cancelled.
func (q *qualityPump) Run(ctx context.Context) error {
	applied := make(map[netip.Addr]bgp.Quality)
	at := make(map[netip.Addr]time.Time)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.kick:
		case <-timer.C:
		}
		now := time.Now()
		q.mu.Lock()
		todo := make(map[netip.Addr]bgp.Quality, len(q.pending))
		for a, want := range q.pending {
			cur, seen := applied[a]
			if seen && want == cur {
				delete(q.pending, a)
				continue
			}
			if seen && want.Down == cur.Down && now.Sub(at[a]) < q.every {
				continue // a cost change too soon after the last: later
			}
			todo[a] = want
			delete(q.pending, a)
		}
		var next time.Duration
		for a := range q.pending {
			if w := at[a].Add(q.every).Sub(now); next == 0 || w < next {
				next = max(w, time.Millisecond)
			}
		}
		q.mu.Unlock()
		for a, want := range todo {
			if err := q.set(ctx, a, want); err != nil {
				q.log.Error("bgp: link quality not applied", "peer", a, "err", err)
				continue
			}
			applied[a], at[a] = want, now
		}
		timer.Stop()
		if next > 0 {
			timer.Reset(next)
		}
	}
}
