package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// syncBuffer is a bytes.Buffer that a command may write while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// command is the events or paths command of roamctl.
type command func(c *cli, ctx context.Context, opts options, args []string) error

var (
	eventsCmd command = (*cli).eventsCommand
	pathsCmd  command = (*cli).pathsCommand
)

// run runs cmd with args against the API at url, with the global options
// roamctl's dispatch would pass (table output), writing to out.
func run(ctx context.Context, cmd command, url string, out *syncBuffer, args ...string) error {
	c := &cli{stdout: out, stderr: out, getenv: func(string) string { return "" }, now: func() time.Time { return now }}
	return cmd(c, ctx, options{api: url, output: "table"}, args)
}

// mark is a phase reached d after seen.
func mark(phase, peer string, seen time.Time, d time.Duration) *roampb.HandoverMark {
	return &roampb.HandoverMark{Phase: phase, Peer: peer, At: timestamppb.New(seen.Add(d)), After: durationpb.New(d)}
}

var (
	seen1 = now.Add(-10*time.Second + 123*time.Millisecond)
	seen2 = now.Add(-2 * time.Second)
	seen3 = now.Add(-time.Second)
)

// handovers: this node moved (complete), c moved (timed out), b moved
// (in progress).
func handovers() []*roampb.HandoverEvent {
	return []*roampb.HandoverEvent{
		{
			Id: 1, Kind: "underlay", Seen: timestamppb.New(seen1), Summary: "wlan0 192.0.2.10/24 -> wwan0 198.51.100.7/24",
			Marks: []*roampb.HandoverMark{
				mark("hub_path", "", seen1, 212*time.Millisecond),
				mark("direct_path", "b", seen1, 480*time.Millisecond+400*time.Microsecond),
				mark("routes", "", seen1, 650*time.Millisecond),
			},
			Done: true,
		},
		{
			Id: 2, Kind: "peer", Peer: "c", Seen: timestamppb.New(seen2), Summary: "c: 203.0.113.5:51820 -> 198.51.100.9:40112",
			Done: true, TimedOut: []string{"direct_path c", "routes (superseded)"},
		},
		{
			Id: 3, Kind: "peer", Peer: "b", Seen: timestamppb.New(seen3), Summary: "b: 203.0.113.7:51820 -> 198.51.100.20:51820",
			Marks: []*roampb.HandoverMark{mark("direct_path", "b", seen3, 300*time.Millisecond)},
		},
	}
}

func TestEventsTable(t *testing.T) {
	apitest.CheckGoroutines(t)
	src := fakeSource()
	src.SetEvents(handovers()...)
	var out syncBuffer
	err := run(t.Context(), eventsCmd, startAPI(t, src), &out)
	want := `ID  SEEN                 KIND      PEER  SUMMARY
1   Mar  1 11:59:50.123  underlay  -     wlan0 192.0.2.10/24 -> wwan0 198.51.100.7/24
    hub_path 212ms
    direct_path b 480ms
    routes 650ms
2   Mar  1 11:59:58.000  peer      c     c: 203.0.113.5:51820 -> 198.51.100.9:40112
    timed out: direct_path c, routes (superseded)
3   Mar  1 11:59:59.000  peer      b     b: 203.0.113.7:51820 -> 198.51.100.20:51820
    direct_path b 300ms
    in progress
`
	if err != nil || out.String() != want {
		t.Errorf("err %v, stdout\n%s\nwant\n%s", err, out.String(), want)
	}
}

func TestEventsEmpty(t *testing.T) {
	apitest.CheckGoroutines(t)
	var out syncBuffer
	err := run(t.Context(), eventsCmd, startAPI(t, &apitest.Source{}), &out)
	if want := "ID  SEEN                 KIND      PEER  SUMMARY\n"; err != nil || out.String() != want {
		t.Errorf("err %v, stdout %q, want %q", err, out.String(), want)
	}
}

func TestEventsJSON(t *testing.T) {
	apitest.CheckGoroutines(t)
	src := fakeSource()
	src.SetEvents(handovers()...)
	var out syncBuffer
	err := run(t.Context(), eventsCmd, startAPI(t, src), &out, "-o", "json")
	got := out.String()
	if err != nil || !strings.HasPrefix(got, `{"events":[{"id":"1","kind":"underlay"`) || strings.Count(got, "\n") != 1 {
		t.Fatalf("err %v, output not the API's one-line JSON: %q", err, got)
	}
	for _, w := range []string{`"after":"0.480400s"`, `"timed_out":["direct_path c","routes (superseded)"]`, `"last_id":"3"`, `"revision":"1"`} {
		if !strings.Contains(got, w) {
			t.Errorf("output %s lacks %s", got, w)
		}
	}
}

func TestEventsErrors(t *testing.T) {
	apitest.CheckGoroutines(t)
	for _, tc := range []struct {
		name string
		err  error
		args []string
		want string
	}{
		{"mobility off", fmt.Errorf("mobility: %w", api.ErrDisabled), nil,
			"listing events: mobility is not enabled on this node (HTTP 409)"},
		{"mobility off, following", api.ErrDisabled, []string{"--follow"},
			"listing events: mobility is not enabled on this node (HTTP 409)"},
		{"unavailable", fmt.Errorf("mobility: %w", api.ErrUnavailable), []string{"-o", "json"},
			"listing events: mobility: not available yet (HTTP 503)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fakeSource()
			src.SetEventsErr(tc.err)
			var out syncBuffer
			err := run(t.Context(), eventsCmd, startAPI(t, src), &out, tc.args...)
			if err == nil || err.Error() != tc.want || out.String() != "" {
				t.Errorf("err %v, stdout %q; want %q and no output", err, out.String(), tc.want)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"b"}, `events: unexpected argument "b"`},
		{[]string{"-o", "yaml"}, `-o "yaml": want table or json`},
		{[]string{"--follow=maybe"}, `invalid boolean value "maybe" for -follow`},
		{[]string{"--after", "3"}, "flag provided but not defined: -after"},
	} {
		var out syncBuffer
		err := run(t.Context(), eventsCmd, "http://127.0.0.1:1", &out, tc.args...)
		var uerr *usageError
		if !errors.As(err, &uerr) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: err %v, want a usage error with %q", tc.args, err, tc.msg)
		}
	}
}

// waitFor waits until out has want, for up to 10 s.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("the output has no %q after 10s:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// follow starts roamctl events --follow with args; the returned function
// stops it and returns its error.
func follow(t *testing.T, url string, out *syncBuffer, args ...string) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, eventsCmd, url, out, append([]string{"--follow"}, args...)...) }()
	return func() error {
		cancel()
		return <-done
	}
}

// --follow prints the events, then what changes, as it changes: the marks of
// an event in progress, new events, the end of an event.
func TestEventsFollow(t *testing.T) {
	apitest.CheckGoroutines(t)
	evs := handovers()
	src := fakeSource()
	src.SetEvents(evs...)
	var out syncBuffer
	stop := follow(t, startAPI(t, src), &out)

	waitFor(t, &out, "direct_path b 300ms\n")
	// b's event: the hub answers.
	ev3 := proto.Clone(evs[2]).(*roampb.HandoverEvent)
	ev3.Marks = append(ev3.Marks, mark("hub_path", "", seen3, 420*time.Millisecond))
	src.SetEvents(evs[0], evs[1], ev3)
	waitFor(t, &out, "hub_path 420ms\n")
	// This node moves again.
	seen4 := now.Add(time.Second)
	ev4 := &roampb.HandoverEvent{
		Id: 4, Kind: "underlay", Seen: timestamppb.New(seen4), Summary: "wwan0 198.51.100.7/24 -> wlan0 192.0.2.10/24",
		Marks: []*roampb.HandoverMark{mark("hub_path", "", seen4, 95*time.Millisecond)},
	}
	src.SetEvents(evs[0], evs[1], ev3, ev4)
	waitFor(t, &out, "hub_path 95ms\n")
	// b's event ends: its routes did not converge.
	ev3 = proto.Clone(ev3).(*roampb.HandoverEvent)
	ev3.Done, ev3.TimedOut = true, []string{"routes"}
	src.SetEvents(evs[0], evs[1], ev3, ev4)
	waitFor(t, &out, "timed out: routes\n")
	// The node's second move ends, and a new event comes with it.
	ev4 = proto.Clone(ev4).(*roampb.HandoverEvent)
	ev4.Marks = append(ev4.Marks, mark("routes", "", seen4, 310*time.Millisecond))
	ev4.Done = true
	ev5 := &roampb.HandoverEvent{Id: 5, Kind: "peer", Peer: "hub", Seen: timestamppb.New(seen4), Summary: "hub: restarted", Done: true}
	src.SetEvents(evs[0], evs[1], ev3, ev4, ev5)
	waitFor(t, &out, "hub: restarted\n")

	if err := stop(); err != nil {
		t.Errorf("stopped following: %v, want nil", err)
	}
	want := `ID  SEEN                 KIND      PEER  SUMMARY
1   Mar  1 11:59:50.123  underlay  -     wlan0 192.0.2.10/24 -> wwan0 198.51.100.7/24
    hub_path 212ms
    direct_path b 480ms
    routes 650ms
2   Mar  1 11:59:58.000  peer      c     c: 203.0.113.5:51820 -> 198.51.100.9:40112
    timed out: direct_path c, routes (superseded)
3   Mar  1 11:59:59.000  peer      b     b: 203.0.113.7:51820 -> 198.51.100.20:51820
    direct_path b 300ms
    hub_path 420ms
4   Mar  1 12:00:01.000  underlay  -     wwan0 198.51.100.7/24 -> wlan0 192.0.2.10/24
    hub_path 95ms
3   timed out: routes
4   routes 310ms
5   Mar  1 12:00:01.000  peer      hub   hub: restarted
`
	if got := out.String(); got != want {
		t.Errorf("stdout\n%s\nwant\n%s", got, want)
	}
}

// -o json --follow prints the first answer, then every answer with a
// change, one a line.
func TestEventsFollowJSON(t *testing.T) {
	apitest.CheckGoroutines(t)
	evs := handovers()
	src := fakeSource()
	src.SetEvents(evs...)
	var out syncBuffer
	stop := follow(t, startAPI(t, src), &out, "-o", "json")
	waitFor(t, &out, `"revision":"1"`)
	ev3 := proto.Clone(evs[2]).(*roampb.HandoverEvent)
	ev3.Done = true
	src.SetEvents(evs[0], evs[1], ev3)
	waitFor(t, &out, `"revision":"2"`)
	if err := stop(); err != nil {
		t.Errorf("stopped following: %v, want nil", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	// The second answer has b's event only: the others were done.
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"events":[{"id":"1"`) ||
		!strings.HasPrefix(lines[1], `{"events":[{"id":"3"`) || !strings.Contains(lines[1], `"done":true`) {
		t.Errorf("output, want two answers:\n%s", out.String())
	}
}

// A follower that sees the IDs begin again (roamd restarted) prints the new
// events.
func TestEventFollowerRestart(t *testing.T) {
	var out bytes.Buffer
	f, err := newEventFollower(&out, &roampb.ListEventsResponse{Events: handovers(), LastId: 3}, time.UTC)
	if err != nil || f.after() != 2 {
		t.Fatalf("after the first answer: %v, after %d, want 2 (event 3 is in progress)", err, f.after())
	}
	out.Reset()
	restarted := &roampb.ListEventsResponse{
		Events: []*roampb.HandoverEvent{{Id: 1, Kind: "underlay", Seen: timestamppb.New(now), Summary: "eth0 up", Done: true}},
		LastId: 1,
	}
	if err := f.update(restarted); err != nil || f.after() != 1 {
		t.Fatalf("after the restart: %v, after %d, want 1", err, f.after())
	}
	if want := "1   Mar  1 12:00:00.000  underlay  -     eth0 up\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func pathsSource() *apitest.Source {
	src := fakeSource()
	src.SetPaths(
		&roampb.Path{
			Name: "b", PublicKey: keyB, Type: "direct", IceState: "connected", Endpoint: "198.51.100.20:51820",
			LocalCandidate: "srflx 203.0.113.11:51820", RemoteCandidate: "host 198.51.100.20:51820",
			Since: timestamppb.New(now.Add(-(2*time.Minute + 5*time.Second))), Restarts: 2,
		},
		&roampb.Path{
			Name: "c", PublicKey: keyC, Type: "hub", IceState: "failed", Via: "hub", Endpoint: "[2001:db8::3]:51820",
			Since: timestamppb.New(now.Add(-5 * time.Second)), Restarts: 1, LastError: "ice: no pair answered",
		},
		&roampb.Path{Name: "hub", PublicKey: keyH, Type: "direct", IceState: "off", Endpoint: "203.0.113.1:51820"},
		&roampb.Path{PublicKey: "newNEWnewNEWnewNEWnewNEWnewNEWnewNEWnewNEW0=", Type: "none", IceState: "new"},
	)
	return src
}

func TestPathsTable(t *testing.T) {
	apitest.CheckGoroutines(t)
	var out syncBuffer
	err := run(t.Context(), pathsCmd, startAPI(t, pathsSource()), &out)
	want := `PEER       TYPE         ICE        ENDPOINT             LOCAL                     REMOTE                    SINCE  RESTARTS
b          direct       connected  198.51.100.20:51820  srflx 203.0.113.11:51820  host 198.51.100.20:51820  2m5s   2
c          hub via hub  failed     [2001:db8::3]:51820  -                         -                         5s     1
hub        direct       off        203.0.113.1:51820    -                         -                         -      0
newNEWne…  none         new        -                    -                         -                         -      0
`
	if err != nil || out.String() != want {
		t.Errorf("err %v, stdout\n%s\nwant\n%s", err, out.String(), want)
	}
}

func TestPathsJSON(t *testing.T) {
	apitest.CheckGoroutines(t)
	var out syncBuffer
	err := run(t.Context(), pathsCmd, startAPI(t, pathsSource()), &out, "-o", "json")
	got := out.String()
	if err != nil || !strings.HasPrefix(got, `{"paths":[{"name":"b"`) || strings.Count(got, "\n") != 1 {
		t.Fatalf("err %v, output not the API's one-line JSON: %q", err, got)
	}
	for _, w := range []string{`"public_key":"` + keyC + `"`, `"last_error":"ice: no pair answered"`, `"via":"hub"`, `"restarts":"2"`} {
		if !strings.Contains(got, w) {
			t.Errorf("output %s lacks %s", got, w)
		}
	}
}

func TestPathsErrors(t *testing.T) {
	apitest.CheckGoroutines(t)
	src := pathsSource()
	src.SetPathsErr(fmt.Errorf("direct paths are not enabled on this node: %w", api.ErrDisabled))
	var out syncBuffer
	err := run(t.Context(), pathsCmd, startAPI(t, src), &out)
	if want := "listing paths: ICE (direct paths) is not enabled on this node (HTTP 409)"; err == nil || err.Error() != want || out.String() != "" {
		t.Errorf("err %v, stdout %q; want %q", err, out.String(), want)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"b"}, `paths: unexpected argument "b"`},
		{[]string{"-o", "yaml"}, `-o "yaml": want table or json`},
		{[]string{"--follow"}, "flag provided but not defined: -follow"},
	} {
		err := run(t.Context(), pathsCmd, "http://127.0.0.1:1", &out, tc.args...)
		var uerr *usageError
		if !errors.As(err, &uerr) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: err %v, want a usage error with %q", tc.args, err, tc.msg)
		}
	}
}
