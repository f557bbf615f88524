package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

func TestLinks(t *testing.T) {
	src := testSrc()
	h := newTestServer(t, Config{}, src).Handler()
	resp, body := do(t, h, "GET", "/v1/links", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	// Link c shows what is left out before the first reply: no since, RTT,
	// jitter or replies, and no directions of the loss.
	want := `{"links":[` +
		`{"name":"b","public_key":"` + keyB + `","address":"100.64.0.2","profile":"default","interval":"1s",` +
		`"state":"up","since":"2026-03-01T11:55:00Z","flaps":"2","transitions":"5",` +
		`"rtt":"0.012345s","rttvar":"0.001500s","jitter":"0.000800s",` +
		`"loss":0.015,"loss_forward":0.01,"loss_backward":0.005,"loss_directions":true,` +
		`"cost":300,"local_pref":200,"probes_sent":"4000","replies":"3940","down_after":3,"hold_down":"2s"},` +
		`{"name":"c","public_key":"` + keyC + `","address":"100.64.0.3","profile":"metered","interval":"10s",` +
		`"state":"down","loss":1,"cost":65535,"probes_sent":"7","misses":7,"down_after":3,"hold_down":"1s"}]}` + "\n"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
	var got roampb.ListLinksResponse
	if err := unmarshalOptions.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	wantLinks, _ := src.Links(t.Context())
	if !proto.Equal(&got, wantLinks) {
		t.Errorf("decoded %v, want %v", &got, wantLinks)
	}
}

// A node that probes no peer answers with an empty object.
func TestLinksEmpty(t *testing.T) {
	h := newTestServer(t, Config{}, &apitest.Source{}).Handler()
	resp, body := do(t, h, "GET", "/v1/links", nil, nil)
	if resp.StatusCode != http.StatusOK || body != "{}\n" {
		t.Errorf("got %d %q, want 200 {}", resp.StatusCode, body)
	}
}

func TestLinksSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  string
	}{
		// 409 as for BGP, saying what is off whatever the Source wrapped.
		{"disabled", fmt.Errorf("probe: %w", ErrDisabled), 409, "listing links: link probing is not enabled on this node"},
		{"disabled reworded", &wrapped{"no probe section", ErrDisabled}, 409, "listing links: link probing is not enabled on this node"},
		{"unavailable", fmt.Errorf("probe: %w", ErrUnavailable), 503, "listing links: probe: not available yet"},
		{"failure", errors.New("probe: prober stopped"), 500, "listing links: probe: prober stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testSrc()
			src.SetLinksErr(tc.err)
			h := newTestServer(t, Config{}, src).Handler()
			resp, body := do(t, h, "GET", "/v1/links", nil, nil)
			checkJSONError(t, resp, body, tc.code, tc.msg)
			// Only the links fail: the other endpoints still answer.
			if resp, body := do(t, h, "GET", "/v1/peers", nil, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("GET /v1/peers: %d %s", resp.StatusCode, body)
			}
		})
	}
}
