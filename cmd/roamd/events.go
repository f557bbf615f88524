package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/roampb"
	"github.com/roamnet/roam/mobility"
)

var (
	errEventsOff = fmt.Errorf("no handover event log: %w", api.ErrDisabled)
)

// Events implements api.Source: the handover events of d.events.
func (d *daemon) Events(ctx context.Context, after uint64) (*roampb.ListEventsResponse, error) {
	if d.events == nil {
		return nil, errEventsOff
	}
	return eventsMessage(d.events.Read(after)), nil
}

// WaitEvents implements api.Source.
func (d *daemon) WaitEvents(ctx context.Context, revision uint64) error {
	if d.events == nil {
		return errEventsOff
	}
	return d.events.Wait(ctx, revision)
}

// eventsMessage is the API's form of an event log; the histograms of the
// known phases come first, in their order, then the others by name.
func eventsMessage(l mobility.EventLog) *roampb.ListEventsResponse {
	out := &roampb.ListEventsResponse{LastId: l.LastID, Revision: l.Revision}
	for _, e := range l.Events {
		out.Events = append(out.Events, eventMessage(e))
	}
	phases := make([]mobility.Phase, 0, len(l.Histograms))
	for p := range l.Histograms {
		phases = append(phases, p)
	}
	slices.SortFunc(phases, func(a, b mobility.Phase) int {
		return cmp.Or(cmp.Compare(phaseRank(a), phaseRank(b)), cmp.Compare(a, b))
	})
	for _, p := range phases {
		h := l.Histograms[p]
		out.Histograms = append(out.Histograms, &roampb.HandoverHistogram{
			Phase: string(p), Buckets: h.Buckets, Counts: h.Counts, Count: h.Count, Sum: h.Sum,
		})
	}
	return out
}

// phaseRank orders the known phases first.
func phaseRank(p mobility.Phase) int {
	if i := slices.Index(mobility.Phases, p); i >= 0 {
		return i
	}
	return len(mobility.Phases)
}

func eventMessage(e mobility.HandoverEvent) *roampb.HandoverEvent {
	m := &roampb.HandoverEvent{
		Id: e.ID, Kind: e.Kind, Peer: e.Peer, Seen: timestamppb.New(e.Seen), Summary: e.Summary,
		Done: e.Done, TimedOut: e.TimedOut,
	}
	for _, mk := range e.Marks {
		m.Marks = append(m.Marks, &roampb.HandoverMark{
			Phase: string(mk.Phase), Peer: mk.Peer, At: timestamppb.New(mk.At), After: durationpb.New(mk.After),
		})
	}
	return m
}
