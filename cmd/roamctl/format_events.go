package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roamnet/roam/api/roampb"
)

// seenLayout shows when a change was seen: local time with milliseconds.
const seenLayout = time.StampMilli

// formatEvents prints the handover events as a table, oldest first: a row
// per event (ID, SEEN in loc, KIND, PEER, SUMMARY), then a line per phase
// reached, indented, with how long after the change ("hub_path 212ms",
// "direct_path b 480ms"), then the phases that timed out, or "in progress"
// for an event that is not done.
func formatEvents(w io.Writer, events []*roampb.HandoverEvent, loc *time.Location) error {
	ew := newEventWriter(w, events, loc)
	ew.header()
	for _, e := range events {
		ew.event(e)
		for _, m := range e.GetMarks() {
			ew.mark(e, m)
		}
		ew.end(e)
		if !e.GetDone() {
			ew.line(e, "in progress")
		}
	}
	return ew.err
}

// eventWriter prints the lines of the events table with fixed column widths,
// so that lines printed later (roamctl events --follow) line up too.
type eventWriter struct {
	w     io.Writer
	loc   *time.Location
	idW   int    // width of the ID column
	kindW int    // of KIND
	peerW int    // of PEER
	last  uint64 // the event whose line was printed last
	err   error  // the first write error
}

// newEventWriter sizes the columns for events; longer values in events
// printed later widen their row only.
func newEventWriter(w io.Writer, events []*roampb.HandoverEvent, loc *time.Location) *eventWriter {
	ew := &eventWriter{w: w, loc: loc, idW: len("ID"), kindW: len("underlay"), peerW: len("PEER")}
	for _, e := range events {
		ew.idW = max(ew.idW, len(fmt.Sprint(e.GetId())))
		ew.kindW = max(ew.kindW, len(e.GetKind()))
		ew.peerW = max(ew.peerW, len(e.GetPeer()))
	}
	return ew
}

func (ew *eventWriter) printf(format string, args ...any) {
	if ew.err == nil {
		_, ew.err = fmt.Fprintf(ew.w, format, args...)
	}
}

func (ew *eventWriter) header() {
	ew.printf("%-*s  %-*s  %-*s  %-*s  %s\n", ew.idW, "ID", len(seenLayout), "SEEN", ew.kindW, "KIND", ew.peerW, "PEER", "SUMMARY")
}

// event prints the row of e.
func (ew *eventWriter) event(e *roampb.HandoverEvent) {
	seen := "-"
	if e.GetSeen() != nil {
		seen = e.GetSeen().AsTime().In(ew.loc).Format(seenLayout)
	}
	ew.printf("%-*d  %-*s  %-*s  %-*s  %s\n", ew.idW, e.GetId(), len(seenLayout), seen,
		ew.kindW, orDash(e.GetKind()), ew.peerW, orDash(e.GetPeer()), orDash(e.GetSummary()))
	ew.last = e.GetId()
}

// mark prints the line of a phase of e that was reached.
func (ew *eventWriter) mark(e *roampb.HandoverEvent, m *roampb.HandoverMark) {
	s := orDash(m.GetPhase())
	if m.GetPeer() != "" {
		s += " " + m.GetPeer()
	}
	ew.line(e, s+" "+afterMs(m))
}

// end prints the phases of a done e that timed out, if any.
func (ew *eventWriter) end(e *roampb.HandoverEvent) {
	if e.GetDone() && len(e.GetTimedOut()) > 0 {
		ew.line(e, "timed out: "+strings.Join(e.GetTimedOut(), ", "))
	}
}

// line prints s under the SEEN column: with e's ID unless the line before
// was about e.
func (ew *eventWriter) line(e *roampb.HandoverEvent, s string) {
	id := ""
	if e.GetId() != ew.last {
		id = fmt.Sprint(e.GetId())
	}
	ew.printf("%-*s  %s\n", ew.idW, id, s)
	ew.last = e.GetId()
}

// afterMs is how long after the change a phase was reached, in whole
// milliseconds: "212ms".
func afterMs(m *roampb.HandoverMark) string {
	if m.GetAfter() == nil {
		return "-"
	}
	return fmt.Sprintf("%dms", m.GetAfter().AsDuration().Round(time.Millisecond).Milliseconds())
}

// eventFollower prints the events of successive answers of GET /v1/events
// as they change: a new event's row and what it has so far, then each phase
// reached and the phases timed out as they come.
type eventFollower struct {
	ew       *eventWriter
	shown    map[uint64]int // events not done yet -> marks printed
	lastSeen uint64         // the highest ID printed
}

// newEventFollower prints the table's header, sized for first, the first
// answer's events, and then those events.
func newEventFollower(w io.Writer, first *roampb.ListEventsResponse, loc *time.Location) (*eventFollower, error) {
	f := &eventFollower{ew: newEventWriter(w, first.GetEvents(), loc), shown: map[uint64]int{}}
	f.ew.header()
	return f, f.update(first)
}

// update prints what changed in resp, an answer for after().
func (f *eventFollower) update(resp *roampb.ListEventsResponse) error {
	if resp.GetLastId() < f.lastSeen {
		// roamd restarted: its IDs begin again.
		f.lastSeen, f.shown = 0, map[uint64]int{}
	}
	in := map[uint64]bool{}
	for _, e := range resp.GetEvents() {
		id := e.GetId()
		in[id] = true
		printed, open := f.shown[id]
		switch {
		case id > f.lastSeen:
			f.ew.event(e)
			f.lastSeen = id
		case !open:
			continue // printed to its end already
		}
		for _, m := range e.GetMarks()[min(printed, len(e.GetMarks())):] {
			f.ew.mark(e, m)
		}
		f.shown[id] = len(e.GetMarks())
		if e.GetDone() {
			f.ew.end(e)
			delete(f.shown, id)
		}
	}
	// Events that left roamd's log will not change any more.
	for id := range f.shown {
		if !in[id] {
			delete(f.shown, id)
		}
	}
	return f.ew.err
}

// after is the "after" of the next request: before the oldest event that
// is not done, else the highest ID printed.
func (f *eventFollower) after() uint64 {
	if len(f.shown) == 0 {
		return f.lastSeen
	}
	return slices.Min(slices.Collect(maps.Keys(f.shown))) - 1
}

// formatPaths prints the paths to the peers as an aligned table, sorted by
// peer: the path type (with the hub for "hub"), the ICE state, the
// WireGuard endpoint, the selected candidate pair, how long the path has had
// its type ("-": since roamd started) and the ICE restarts.
func formatPaths(w io.Writer, paths []*roampb.Path, now time.Time) error {
	paths = slices.Clone(paths)
	slices.SortStableFunc(paths, func(a, b *roampb.Path) int { return strings.Compare(pathPeer(a), pathPeer(b)) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tTYPE\tICE\tENDPOINT\tLOCAL\tREMOTE\tSINCE\tRESTARTS")
	for _, p := range paths {
		typ := orDash(p.GetType())
		if p.GetVia() != "" {
			typ += " via " + p.GetVia()
		}
		since := "-"
		if p.GetSince() != nil {
			since = humanDuration(now.Sub(p.GetSince().AsTime()))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
			orDash(pathPeer(p)),
			typ,
			orDash(p.GetIceState()),
			orDash(p.GetEndpoint()),
			orDash(p.GetLocalCandidate()),
			orDash(p.GetRemoteCandidate()),
			since,
			p.GetRestarts())
	}
	return tw.Flush()
}

// pathPeer names a path's peer: its name, else its shortened public key.
func pathPeer(p *roampb.Path) string {
	if p.GetName() != "" {
		return p.GetName()
	}
	return shortKey(p.GetPublicKey())
}
