package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// linksSource is fakeSource with a probed link to each peer.
func linksSource() *apitest.Source {
	src := fakeSource()
	src.SetLinks(
		// Up since start; the hub's reflector counts both directions.
		&roampb.Link{
			Name: "hub", PublicKey: keyH, Address: "100.64.0.254", Profile: "default",
			Interval: durationpb.New(time.Second), State: "up",
			Rtt: durationpb.New(23456 * time.Microsecond), Rttvar: durationpb.New(2100 * time.Microsecond),
			Jitter: durationpb.New(950 * time.Microsecond),
			Loss:   0.013, LossForward: 0.01, LossBackward: 0.003, LossDirections: true,
			Cost: 270, LocalPref: 200, ProbesSent: 11045, Replies: 10907, DownAfter: 3,
			HoldDown: durationpb.New(time.Second),
		},
		// Up again after two flaps, without directions of the loss.
		&roampb.Link{
			Name: "b", PublicKey: keyB, Address: "100.64.0.2", Profile: "fast",
			Interval: durationpb.New(200 * time.Millisecond), State: "up",
			Since: timestamppb.New(now.Add(-(2*time.Minute + 5*time.Second))), Flaps: 2, Transitions: 4,
			Rtt: durationpb.New(4 * time.Millisecond), Rttvar: durationpb.New(260 * time.Microsecond),
			Jitter: durationpb.New(49 * time.Microsecond),
			Loss:   0.2, Cost: 1400, ProbesSent: 900, Replies: 720, DownAfter: 5,
			HoldDown: durationpb.New(4 * time.Second),
		},
		// Never answered.
		&roampb.Link{
			Name: "c", PublicKey: keyC, Address: "100.64.0.3", Profile: "metered",
			Interval: durationpb.New(10 * time.Second), State: "down",
			Loss: 1, Cost: 65535, ProbesSent: 7, Misses: 7, DownAfter: 3,
			HoldDown: durationpb.New(time.Second),
		},
		// Not probed yet.
		&roampb.Link{PublicKey: "newNEWnewNEWnewNEWnewNEWnewNEWnewNEWnewNEW0=", State: "down"},
	)
	return src
}

func TestLinksTable(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, linksSource())
	code, out, errOut := roamctl(t, nil, "--api", url, "links")
	want := `PEER       STATE  SINCE  RTT     RTTVAR  JITTER  LOSS                      COST   LPREF  FLAPS
b          up     2m5s   4.0ms   0.3ms   0.0ms   20.0%                     1400   -      2
c          down   -      -       -       -       100.0%                    65535  -      0
hub        up     -      23.5ms  2.1ms   0.9ms   1.3% (fwd 1.0% bwd 0.3%)  270    200    0
newNEWne…  down   -      -       -       -       -                         -      -      0
`
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
}

func TestLinksEmpty(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, &apitest.Source{})
	code, out, errOut := roamctl(t, nil, "--api", url, "links")
	if want := "PEER  STATE  SINCE  RTT  RTTVAR  JITTER  LOSS  COST  LPREF  FLAPS\n"; code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout %q, want %q", code, errOut, out, want)
	}
}

func TestLinksJSON(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, linksSource())
	for _, args := range [][]string{
		{"--api", url, "links", "-o", "json"},
		{"--api", url, "-o=json", "links"},
	} {
		code, out, errOut := roamctl(t, nil, args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, `{"links":[`) || strings.Count(out, "\n") != 1 {
			t.Fatalf("%v: exit %d, stderr %q, output not the API's one-line JSON: %q", args, code, errOut, out)
		}
		for _, w := range []string{
			`"public_key":"` + keyH + `"`, `"rtt":"0.023456s"`, `"loss_forward":0.01`, `"loss_directions":true`,
			`"since":"2026-03-01T11:57:55Z"`, `"flaps":"2"`, `"probes_sent":"7"`, `"hold_down":"4s"`,
		} {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output %s lacks %s", args, out, w)
			}
		}
	}
}

func TestLinksErrors(t *testing.T) {
	apitest.CheckGoroutines(t)
	for _, tc := range []struct {
		name string
		err  error
		args []string
		want string
	}{
		{"probing off", fmt.Errorf("probe: %w", api.ErrDisabled), []string{"links"},
			"roamctl: listing links: link probing is not enabled on this node (HTTP 409)\n"},
		{"probing off json", api.ErrDisabled, []string{"links", "-o", "json"},
			"roamctl: listing links: link probing is not enabled on this node (HTTP 409)\n"},
		{"unavailable", fmt.Errorf("probe: %w", api.ErrUnavailable), []string{"links"},
			"roamctl: listing links: probe: not available yet (HTTP 503)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := linksSource()
			src.SetLinksErr(tc.err)
			code, out, errOut := roamctl(t, map[string]string{"ROAMCTL_API": startAPI(t, src)}, tc.args...)
			if code != 1 || out != "" || errOut != tc.want {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"links", "b"}, `roamctl: links: unexpected argument "b"`},
		{[]string{"links", "-o", "yaml"}, `roamctl: -o "yaml": want table or json`},
		{[]string{"links", "--token-file", "x"}, "roamctl: flag provided but not defined: -token-file"},
	} {
		code, out, errOut := roamctl(t, nil, tc.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, tc.msg+"\n") || !strings.Contains(errOut, "usage: roamctl") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.msg)
		}
	}
}
