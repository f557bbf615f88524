package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/roamnet/roam/api/roampb"
)

// maxWait is the longest long poll GET /v1/events accepts.
const maxWait = 60 * time.Second

// eventsQuery is the query of GET /v1/events.
type eventsQuery struct {
	after       uint64        // only events with a higher ID
	wait        time.Duration // long poll for up to this long; 0: answer at once
	revision    uint64        // with wait: wait for a revision other than this
	hasRevision bool          // revision was given
}

// parseEventsQuery parses the raw query of GET /v1/events: after=N (an
// event ID), wait=DURATION (Go syntax, 0 to 60s) and revision=N, each at
// most once. Anything else is an error with a message for the client that
// names the parameter.
func parseEventsQuery(raw string) (eventsQuery, error) {
	var q eventsQuery
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("invalid query %q: %v", raw, err)
	}
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		vs := vals[name]
		switch name {
		case "after", "wait", "revision":
		default:
			return q, fmt.Errorf("unknown query parameter %q: want after, wait or revision", name)
		}
		if len(vs) > 1 {
			return q, fmt.Errorf("query parameter %s is given %d times: give it once", name, len(vs))
		}
	}
	if v, ok := vals["after"]; ok {
		if q.after, err = parseID(v[0]); err != nil {
			return q, fmt.Errorf("query parameter after=%q: %v", v[0], err)
		}
	}
	if v, ok := vals["revision"]; ok {
		if q.revision, err = parseID(v[0]); err != nil {
			return q, fmt.Errorf("query parameter revision=%q: %v", v[0], err)
		}
		q.hasRevision = true
	}
	if v, ok := vals["wait"]; ok {
		d, err := time.ParseDuration(v[0])
		if err != nil || d < 0 || d > maxWait {
			return q, fmt.Errorf("query parameter wait=%q: want a duration from 0s to %s, e.g. 30s", v[0], maxWait)
		}
		q.wait = d
	}
	if q.hasRevision && q.wait == 0 {
		return q, errors.New("query parameter revision needs wait: it says what to wait for")
	}
	return q, nil
}

// parseID parses a decimal uint64 without sign or leading zeros.
func parseID(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, errors.New("want a whole number from 0 to 18446744073709551615")
	}
	return n, nil
}

// ready reports whether an answer to q need not wait: it has events, or,
// when q names a revision, its revision is another one.
func (q eventsQuery) ready(resp *roampb.ListEventsResponse) bool {
	if q.hasRevision {
		return resp.GetRevision() != q.revision
	}
	return len(resp.GetEvents()) > 0
}

// handleEvents serves GET /v1/events. With wait, an answer that is not
// ready (see eventsQuery.ready) is held back until the events have changed
// so that it is, or wait has passed: then it has what there is.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventsQuery(r.URL.RawQuery)
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	resp, err := s.events(r.Context(), q.after)
	if err == nil && q.wait > 0 && !q.ready(resp) {
		// The server's write timeout is shorter than the longest wait.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(q.wait + writeTimeout))
		ctx, cancel := context.WithTimeout(r.Context(), q.wait)
		for err == nil && !q.ready(resp) {
			if err = s.src.WaitEvents(ctx, resp.GetRevision()); err == nil {
				resp, err = s.events(r.Context(), q.after)
			}
		}
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			err = nil // waited long enough: answer with the last answer
		}
	}
	if err != nil {
		s.sourceErrorOf(w, r, "listing events", "mobility", err)
		return
	}
	writeMessage(w, http.StatusOK, resp)
}

// events calls Source.Events; a nil answer is an error.
func (s *Server) events(ctx context.Context, after uint64) (*roampb.ListEventsResponse, error) {
	resp, err := s.src.Events(ctx, after)
	if err == nil && resp == nil {
		err = errors.New("no event list")
	}
	return resp, err
}
