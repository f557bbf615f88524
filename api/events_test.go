package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// handoverMark is a mark reached d after seen.
func handoverMark(phase, peer string, seen time.Time, d time.Duration) *roampb.HandoverMark {
	return &roampb.HandoverMark{Phase: phase, Peer: peer, At: timestamppb.New(seen.Add(d)), After: durationpb.New(d)}
}

// testEvents are three handovers: this node's move, complete; c's move,
// timed out; b's move, still open.
func testEvents() []*roampb.HandoverEvent {
	seen1, seen2, seen3 := t0.Add(-10*time.Second), t0.Add(-2*time.Second), t0.Add(-time.Second)
	return []*roampb.HandoverEvent{
		{
			Id: 1, Kind: "underlay", Seen: timestamppb.New(seen1), Summary: "wlan0 192.0.2.10/24 -> wwan0 198.51.100.7/24",
			Marks: []*roampb.HandoverMark{
				handoverMark("hub_path", "", seen1, 212*time.Millisecond),
				handoverMark("direct_path", "b", seen1, 480*time.Millisecond),
				handoverMark("routes", "", seen1, 650*time.Millisecond),
			},
			Done: true,
		},
		{
			Id: 2, Kind: "peer", Peer: "c", Seen: timestamppb.New(seen2), Summary: "c: 203.0.113.5:51820 -> 198.51.100.9:40112",
			Done: true, TimedOut: []string{"direct_path c"},
		},
		{
			Id: 3, Kind: "peer", Peer: "b", Seen: timestamppb.New(seen3), Summary: "b: 203.0.113.7:51820 -> 198.51.100.20:51820",
			Marks: []*roampb.HandoverMark{handoverMark("direct_path", "b", seen3, 300*time.Millisecond)},
		},
	}
}

func testHistograms() []*roampb.HandoverHistogram {
	b := []float64{0.1, 0.5, 1}
	return []*roampb.HandoverHistogram{
		{Phase: "hub_path", Buckets: b, Counts: []uint64{0, 1, 3}, Count: 4, Sum: 3.2},
		{Phase: "direct_path", Buckets: b, Counts: []uint64{0, 2, 2}, Count: 2, Sum: 0.78},
		{Phase: "routes", Buckets: b, Counts: []uint64{0, 0, 1}, Count: 1, Sum: 0.65},
	}
}

// eventsSrc is testSrc with testEvents and testHistograms.
func eventsSrc() *apitest.Source {
	src := testSrc()
	src.SetEvents(testEvents()...)
	src.SetHistograms(testHistograms()...)
	return src
}

const wantHistogramsJSON = `"histograms":[` +
	`{"phase":"hub_path","buckets":[0.1,0.5,1],"counts":["0","1","3"],"count":"4","sum":3.2},` +
	`{"phase":"direct_path","buckets":[0.1,0.5,1],"counts":["0","2","2"],"count":"2","sum":0.78},` +
	`{"phase":"routes","buckets":[0.1,0.5,1],"counts":["0","0","1"],"count":"1","sum":0.65}]`

func TestEvents(t *testing.T) {
	src := eventsSrc()
	h := newTestServer(t, Config{}, src).Handler()
	resp, body := do(t, h, "GET", "/v1/events", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	want := `{"events":[` +
		`{"id":"1","kind":"underlay","seen":"2026-03-01T11:59:50Z","summary":"wlan0 192.0.2.10/24 -> wwan0 198.51.100.7/24","marks":[` +
		`{"phase":"hub_path","at":"2026-03-01T11:59:50.212Z","after":"0.212s"},` +
		`{"phase":"direct_path","peer":"b","at":"2026-03-01T11:59:50.480Z","after":"0.480s"},` +
		`{"phase":"routes","at":"2026-03-01T11:59:50.650Z","after":"0.650s"}],"done":true},` +
		`{"id":"2","kind":"peer","peer":"c","seen":"2026-03-01T11:59:58Z","summary":"c: 203.0.113.5:51820 -> 198.51.100.9:40112",` +
		`"done":true,"timed_out":["direct_path c"]},` +
		`{"id":"3","kind":"peer","peer":"b","seen":"2026-03-01T11:59:59Z","summary":"b: 203.0.113.7:51820 -> 198.51.100.20:51820","marks":[` +
		`{"phase":"direct_path","peer":"b","at":"2026-03-01T11:59:59.300Z","after":"0.300s"}]}],` +
		`"last_id":"3","revision":"1",` + wantHistogramsJSON + "}\n"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
	var got roampb.ListEventsResponse
	if err := unmarshalOptions.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	wantResp, _ := src.Events(t.Context(), 0)
	if !proto.Equal(&got, wantResp) {
		t.Errorf("decoded %v, want %v", &got, wantResp)
	}
}

// after leaves out the older events; the histograms and last_id are always
// there.
func TestEventsAfter(t *testing.T) {
	h := newTestServer(t, Config{}, eventsSrc()).Handler()
	for _, tc := range []struct {
		query string
		ids   string
	}{
		{"", "1,2,3"},
		{"?after=0", "1,2,3"},
		{"?after=1", "2,3"},
		{"?after=3", ""},
		{"?after=18446744073709551615", ""},
		{"?wait=0s&after=2", "3"},
	} {
		resp, body := do(t, h, "GET", "/v1/events"+tc.query, nil, nil)
		var got roampb.ListEventsResponse
		if err := unmarshalOptions.Unmarshal([]byte(body), &got); resp.StatusCode != 200 || err != nil {
			t.Fatalf("%s: status %d, body %s, %v", tc.query, resp.StatusCode, body, err)
		}
		var ids []string
		for _, e := range got.GetEvents() {
			ids = append(ids, fmt.Sprint(e.GetId()))
		}
		if s := strings.Join(ids, ","); s != tc.ids || got.GetLastId() != 3 || len(got.GetHistograms()) != 3 {
			t.Errorf("%s: events %q, last_id %d, %d histograms; want %q, 3 and 3", tc.query, s, got.GetLastId(), len(got.GetHistograms()), tc.ids)
		}
	}
}

// A node without handovers yet answers with its histograms only.
func TestEventsEmpty(t *testing.T) {
	h := newTestServer(t, Config{}, &apitest.Source{}).Handler()
	resp, body := do(t, h, "GET", "/v1/events", nil, nil)
	if resp.StatusCode != http.StatusOK || body != "{}\n" {
		t.Errorf("got %d %q, want 200 {}", resp.StatusCode, body)
	}
}

func TestEventsQueryErrors(t *testing.T) {
	h := newTestServer(t, Config{}, eventsSrc()).Handler()
	for _, tc := range []struct {
		query, msg string
	}{
		{"after=-1", `query parameter after="-1": want a whole number from 0 to 18446744073709551615`},
		{"after=", `query parameter after="": want a whole number`},
		{"after=01", `query parameter after="01": want a whole number`},
		{"after=%2B1", `query parameter after="+1": want a whole number`},
		{"after=18446744073709551616", `query parameter after="18446744073709551616": want a whole number`},
		{"after=1&after=2", "query parameter after is given 2 times: give it once"},
		{"wait=5", `query parameter wait="5": want a duration from 0s to 1m0s, e.g. 30s`},
		{"wait=-1s", `query parameter wait="-1s": want a duration from 0s to 1m0s`},
		{"wait=61s", `query parameter wait="61s": want a duration from 0s to 1m0s`},
		{"wait=1h", `query parameter wait="1h": want a duration`},
		{"wait=soon", `query parameter wait="soon": want a duration`},
		{"revision=x&wait=1s", `query parameter revision="x": want a whole number`},
		{"revision=4", "query parameter revision needs wait"},
		{"afterr=1", `unknown query parameter "afterr": want after, wait or revision`},
		{"after=1;wait=1s", `invalid query "after=1;wait=1s"`},
		{"after=%zz", `invalid query "after=%zz"`},
	} {
		resp, body := do(t, h, "GET", "/v1/events?"+tc.query, nil, nil)
		checkJSONError(t, resp, body, 400, tc.msg)
	}
}

// longPoll serves one request on h in a goroutine; the returned function
// waits for its answer.
func longPoll(t *testing.T, h http.Handler, target string) func() (int, *roampb.ListEventsResponse) {
	t.Helper()
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		resp, body := do(t, h, "GET", target, nil, nil)
		done <- answer{resp.StatusCode, body}
	}()
	return func() (int, *roampb.ListEventsResponse) {
		a := <-done
		var got roampb.ListEventsResponse
		if a.code == 200 {
			if err := unmarshalOptions.Unmarshal([]byte(a.body), &got); err != nil {
				t.Fatalf("%s: %v: %s", target, err, a.body)
			}
		}
		return a.code, &got
	}
}

// ids are the IDs of resp's events, "1,2".
func ids(resp *roampb.ListEventsResponse) string {
	var s []string
	for _, e := range resp.GetEvents() {
		s = append(s, fmt.Sprint(e.GetId()))
	}
	return strings.Join(s, ",")
}

func TestEventsLongPoll(t *testing.T) {
	evs := testEvents()
	for _, tc := range []struct {
		name   string
		target string
		change func(src *apitest.Source)
		after  time.Duration // when the answer comes
		ids    string        // and the events in it
	}{
		{
			name:   "events there: at once",
			target: "/v1/events?after=1&wait=30s",
			after:  0, ids: "2,3",
		},
		{
			name:   "a new event ends the wait",
			target: "/v1/events?after=3&wait=30s",
			change: func(src *apitest.Source) {
				src.SetEvents(append(testEvents(), &roampb.HandoverEvent{Id: 4, Kind: "underlay"})...)
			},
			after: 2 * time.Second, ids: "4",
		},
		{
			name:   "a change to an older event does not end a wait for newer ones",
			target: "/v1/events?after=3&wait=30s",
			change: func(src *apitest.Source) {
				done := proto.Clone(evs[2]).(*roampb.HandoverEvent)
				done.Done = true
				src.SetEvents(evs[0], evs[1], done)
				time.Sleep(3 * time.Second)
				src.SetEvents(evs[0], evs[1], done, &roampb.HandoverEvent{Id: 4, Kind: "underlay"})
			},
			after: 5 * time.Second, ids: "4",
		},
		{
			name:   "nothing new: empty when wait passes",
			target: "/v1/events?after=3&wait=5s",
			after:  5 * time.Second, ids: "",
		},
		{
			name:   "the revision is old: at once",
			target: "/v1/events?after=2&revision=0&wait=30s",
			after:  0, ids: "3",
		},
		{
			name:   "a change to an event already seen ends the wait",
			target: "/v1/events?after=2&revision=1&wait=30s",
			change: func(src *apitest.Source) {
				done := proto.Clone(evs[2]).(*roampb.HandoverEvent)
				done.Done = true
				src.SetEvents(evs[0], evs[1], done)
			},
			after: 2 * time.Second, ids: "3",
		},
		{
			name:   "wait=0s answers at once",
			target: "/v1/events?after=3&wait=0s",
			after:  0, ids: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := eventsSrc() // revision 1
				h := newTestServer(t, Config{}, src).Handler()
				start := time.Now()
				answer := longPoll(t, h, tc.target)
				if tc.change != nil {
					time.Sleep(2 * time.Second)
					tc.change(src)
				}
				code, resp := answer()
				if took := time.Since(start); code != 200 || took != tc.after || ids(resp) != tc.ids {
					t.Errorf("status %d after %v with events %q; want 200 after %v with %q", code, took, ids(resp), tc.after, tc.ids)
				}
				if resp.GetRevision() == 0 || len(resp.GetHistograms()) != 3 {
					t.Errorf("answer without revision or histograms: %v", resp)
				}
			})
		})
	}
}

// The client leaving ends the wait.
func TestEventsLongPollCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestServer(t, Config{}, eventsSrc()).Handler()
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", "/v1/events?after=3&wait=60s", nil)
		done := make(chan int)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			done <- rec.Code
		}()
		time.Sleep(time.Second)
		cancel()
		if code := <-done; code != http.StatusServiceUnavailable {
			t.Errorf("status %d after the client left, want 503", code)
		}
	})
}

func TestEventsSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"disabled", fmt.Errorf("mobility: %w", ErrDisabled), 409, "listing events: mobility is not enabled on this node"},
		{"unavailable", fmt.Errorf("mobility: %w", ErrUnavailable), 503, "listing events: mobility: not available yet"},
		{"failure", errors.New("mobility: recorder gone"), 500, "listing events: mobility: recorder gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := eventsSrc()
			src.SetEventsErr(tc.err)
			h := newTestServer(t, Config{}, src).Handler()
			for _, q := range []string{"", "?after=3&wait=30s"} {
				resp, body := do(t, h, "GET", "/v1/events"+q, nil, nil)
				checkJSONError(t, resp, body, tc.code, tc.msg)
			}
			// Only the events fail.
			if resp, body := do(t, h, "GET", "/v1/links", nil, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("GET /v1/links: %d %s", resp.StatusCode, body)
			}
		})
	}
	// A failure while waiting is answered as one before.
	synctest.Test(t, func(t *testing.T) {
		src := eventsSrc()
		h := newTestServer(t, Config{}, src).Handler()
		answer := longPoll(t, h, "/v1/events?after=3&wait=30s")
		time.Sleep(time.Second)
		src.SetEventsErr(fmt.Errorf("mobility: %w", ErrDisabled))
		if code, _ := answer(); code != 409 {
			t.Errorf("disabled while waiting: status %d, want 409", code)
		}
	})
	resp, body := do(t, newTestServer(t, Config{}, nilSource{}).Handler(), "GET", "/v1/events", nil, nil)
	checkJSONError(t, resp, body, 500, "listing events: no event list")
}

// FuzzEventsQuery checks the parser of the query of GET /v1/events, which
// comes from outside: whatever it accepts survives being written back as a
// query, within the limits; whatever it refuses gets a message.
func FuzzEventsQuery(f *testing.F) {
	for _, s := range []string{
		"", "after=3", "after=3&wait=30s", "wait=1m0s&revision=7", "after=18446744073709551615",
		"wait=1.5s", "wait=500ms", "wait=0", "wait=+5s", "wait=60.000000001s", "after=1&after=1",
		"after=%31", "after=1;wait=1s", "revision=1", "x", "=", "&&", "wait=1e3ns",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseEventsQuery(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: empty error", raw)
			}
			return
		}
		if q.wait < 0 || q.wait > maxWait {
			t.Fatalf("%q: wait %v accepted", raw, q.wait)
		}
		if q.hasRevision && q.wait == 0 {
			t.Fatalf("%q: revision without wait accepted", raw)
		}
		v := url.Values{}
		v.Set("after", fmt.Sprint(q.after))
		v.Set("wait", q.wait.String())
		if q.hasRevision {
			v.Set("revision", fmt.Sprint(q.revision))
		}
		q2, err := parseEventsQuery(v.Encode())
		if err != nil || q2 != q {
			t.Fatalf("%q parsed as %+v; written back as %q it parses as %+v, %v", raw, q, v.Encode(), q2, err)
		}
	})
}

func FuzzEventsJSON(f *testing.F) {
	f.Add([]byte(`{"events":[{"id":"1","kind":"underlay","seen":"2026-03-01T11:59:50Z","summary":"wlan0 -> wwan0",` +
		`"marks":[{"phase":"hub_path","at":"2026-03-01T11:59:50.212Z","after":"0.212s"},` +
		`{"phase":"direct_path","peer":"b","at":"2026-03-01T11:59:50.480+01:00","after":"0.480s"}],"done":true,` +
		`"timed_out":["routes","direct_path c (superseded)"]}],"last_id":"1","revision":"3",` +
		`"histograms":[{"phase":"hub_path","buckets":[0.05,0.1],"counts":["0","1"],"count":"2","sum":3.2}]}`))
	f.Add([]byte(`{"events":[{"id":18446744073709551615,"timedOut":[],"marks":[{"after":"-0.5s"},{}]},{}],"lastId":"0"}`))
	f.Add([]byte(`{"histograms":[{"buckets":["NaN","Infinity",-0],"counts":[],"sum":"-Infinity"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.ListEventsResponse { return &roampb.ListEventsResponse{} })
	})
}
