package bgp

import (
	"context"
	"net/netip"
	"sync"
)

// updateQueue coalesces best-path changes per prefix so that GoBGP's watcher
// never waits for the consumer: push never blocks, and a slow consumer sees
// only the latest event for each prefix.
type updateQueue struct {
	wake chan struct{} // 1-buffered: "pending is not empty"

	mu      sync.Mutex
	pending map[netip.Prefix]RouteEvent
	order   []netip.Prefix // first-seen order of pending prefixes
}

func newUpdateQueue() *updateQueue {
	return &updateQueue{wake: make(chan struct{}, 1), pending: make(map[netip.Prefix]RouteEvent)}
}

func (q *updateQueue) push(ev RouteEvent) {
	q.mu.Lock()
	if _, ok := q.pending[ev.Route.Prefix]; !ok {
		q.order = append(q.order, ev.Route.Prefix)
	}
	q.pending[ev.Route.Prefix] = ev
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *updateQueue) take() []RouteEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]RouteEvent, 0, len(q.order))
	for _, p := range q.order {
		out = append(out, q.pending[p])
	}
	q.order = q.order[:0]
	clear(q.pending)
	return out
}

// pump delivers queued events to out until ctx is done, calling delivered
// after each event out accepted.
func (q *updateQueue) pump(ctx context.Context, out chan<- RouteEvent, delivered func(RouteEvent)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for _, ev := range q.take() {
			select {
			case out <- ev:
				delivered(ev)
			case <-ctx.Done():
				return
			}
		}
	}
}
