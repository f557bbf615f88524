package bgp

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestUpdateQueueCoalesces(t *testing.T) {
	q := newUpdateQueue()
	p1, p2 := netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("10.244.2.0/24")
	q.push(RouteEvent{Route: Route{Prefix: p1, NextHop: netip.MustParseAddr("100.64.0.1")}})
	q.push(RouteEvent{Route: Route{Prefix: p2}})
	q.push(RouteEvent{Route: Route{Prefix: p1}, Withdrawn: true})
	got := q.take()
	if len(got) != 2 || got[0].Route.Prefix != p1 || !got[0].Withdrawn || got[1].Route.Prefix != p2 {
		t.Fatalf("take() = %+v, want p1 withdrawn then p2", got)
	}
	if got := q.take(); len(got) != 0 {
		t.Fatalf("second take() = %+v, want empty", got)
	}
}

func TestUpdateQueuePumpNeverBlocksPush(t *testing.T) {
	q := newUpdateQueue()
	out := make(chan RouteEvent) // nobody reads
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.pump(ctx, out, func(RouteEvent) {}); close(done) }()
	pushed := make(chan struct{})
	go func() {
		for i := range 10000 {
			q.push(RouteEvent{Route: Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}})
		}
		close(pushed)
	}()
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("push blocked behind a consumer that does not read")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pump did not return after cancel")
	}
}
