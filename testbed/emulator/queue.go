package emulator

import (
	"container/heap"
	"time"
)

// pending is a frame waiting for its departure.
type pending struct {
	data   []byte
	depart time.Time
	seq    uint64 // arrival order; breaks ties so equal departures stay FIFO
}

// departures is a min-heap of pending frames by departure, then arrival.
type departures []pending

func (q departures) Len() int { return len(q) }
func (q departures) Less(i, j int) bool {
	if !q[i].depart.Equal(q[j].depart) {
		return q[i].depart.Before(q[j].depart)
	}
	return q[i].seq < q[j].seq
}
func (q departures) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *departures) Push(x any)   { *q = append(*q, x.(pending)) }
func (q *departures) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = pending{}
	*q = old[:len(old)-1]
	return p
}

func (q *departures) push(p pending) { heap.Push(q, p) }
func (q *departures) pop() pending   { return heap.Pop(q).(pending) }

// next is the earliest departure; only valid when the queue is not empty.
func (q departures) next() time.Time { return q[0].depart }
