package main

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/probe"
)

// The pump sends downs and ups at once, and cost changes at most every 2 s
// per peer, the latest one winning.
func TestQualityPump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type call struct {
			at   time.Duration
			addr netip.Addr
			q    bgp.Quality
		}
		var mu sync.Mutex
		var calls []call
		start := time.Now()
		set := func(_ context.Context, a netip.Addr, q bgp.Quality) error {
			mu.Lock()
			calls = append(calls, call{time.Since(start), a, q})
			mu.Unlock()
			return nil
		}
		q := newQualityPump(set, 2*time.Second, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- q.Run(ctx) }()
		b := netip.MustParseAddrPort("100.64.0.2:862")
		c := netip.MustParseAddrPort("100.64.0.3:862")
		link := func(addr netip.AddrPort, s probe.State, cost probe.Cost) probe.Link {
			return probe.Link{Target: probe.Target{Name: "x", Addr: addr}, State: s, Cost: cost}
		}
		q.offer(link(b, probe.Up, 256)) // t=0: applied
		time.Sleep(100 * time.Millisecond)
		q.offer(link(b, probe.Up, 304)) // too soon: held
		q.offer(link(b, probe.Up, 352)) // replaces it
		q.offer(link(c, probe.Up, 272)) // another peer: at once
		time.Sleep(100 * time.Millisecond)
		q.offer(link(c, probe.Down, probe.InfiniteCost)) // a down: at once
		time.Sleep(3 * time.Second)
		q.offer(link(b, probe.Up, 352)) // unchanged: nothing
		time.Sleep(time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := []call{
			{0, b.Addr(), bgp.Quality{Cost: 256}},
			{100 * time.Millisecond, c.Addr(), bgp.Quality{Cost: 272}},
			{200 * time.Millisecond, c.Addr(), bgp.Quality{Down: true}},
			{2 * time.Second, b.Addr(), bgp.Quality{Cost: 352}},
		}
		if len(calls) != len(want) {
			t.Fatalf("calls %+v, want %+v", calls, want)
		}
		for i := range want {
			if calls[i] != want[i] {
				t.Errorf("call %d: %+v, want %+v", i, calls[i], want[i])
			}
		}
	})
}
