package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// testPaths: direct to b, through the hub to c, nothing to a new peer.
func testPaths() []*roampb.Path {
	return []*roampb.Path{
		{
			Name: "b", PublicKey: keyB, Type: "direct", IceState: "connected", Endpoint: "198.51.100.20:51820",
			LocalCandidate: "srflx 203.0.113.11:51820", RemoteCandidate: "host 198.51.100.20:51820",
			Since: timestamppb.New(t0.Add(-90 * time.Second)), Restarts: 2,
		},
		{
			Name: "c", PublicKey: keyC, Type: "hub", IceState: "failed", Via: "hub",
			Since: timestamppb.New(t0.Add(-5 * time.Second)), Restarts: 1, LastError: "ice: no candidate pair answered in 10s",
		},
		{PublicKey: keyA, Type: "none", IceState: "new"},
	}
}

func TestPaths(t *testing.T) {
	src := testSrc()
	src.SetPaths(testPaths()...)
	h := newTestServer(t, Config{}, src).Handler()
	resp, body := do(t, h, "GET", "/v1/paths", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	want := `{"paths":[` +
		`{"name":"b","public_key":"` + keyB + `","type":"direct","ice_state":"connected","endpoint":"198.51.100.20:51820",` +
		`"local_candidate":"srflx 203.0.113.11:51820","remote_candidate":"host 198.51.100.20:51820",` +
		`"since":"2026-03-01T11:58:30Z","restarts":"2"},` +
		`{"name":"c","public_key":"` + keyC + `","type":"hub","ice_state":"failed","since":"2026-03-01T11:59:55Z","restarts":"1",` +
		`"last_error":"ice: no candidate pair answered in 10s","via":"hub"},` +
		`{"public_key":"` + keyA + `","type":"none","ice_state":"new"}]}` + "\n"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
	var got roampb.ListPathsResponse
	if err := unmarshalOptions.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if want := (&roampb.ListPathsResponse{Paths: testPaths()}); !proto.Equal(&got, want) {
		t.Errorf("decoded %v, want %v", &got, want)
	}
}

func TestPathsEmpty(t *testing.T) {
	h := newTestServer(t, Config{}, &apitest.Source{}).Handler()
	resp, body := do(t, h, "GET", "/v1/paths", nil, nil)
	if resp.StatusCode != http.StatusOK || body != "{}\n" {
		t.Errorf("got %d %q, want 200 {}", resp.StatusCode, body)
	}
}

func TestPathsSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"disabled", fmt.Errorf("direct paths are not enabled on this node: %w", ErrDisabled), 409,
			"listing paths: ICE (direct paths) is not enabled on this node"},
		{"unavailable", fmt.Errorf("ice: %w", ErrUnavailable), 503, "listing paths: ice: not available yet"},
		{"failure", errors.New("ice: agent gone"), 500, "listing paths: ice: agent gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testSrc()
			src.SetPaths(testPaths()...)
			src.SetPathsErr(tc.err)
			h := newTestServer(t, Config{}, src).Handler()
			resp, body := do(t, h, "GET", "/v1/paths", nil, nil)
			checkJSONError(t, resp, body, tc.code, tc.msg)
			if resp, body := do(t, h, "GET", "/v1/peers", nil, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("GET /v1/peers: %d %s", resp.StatusCode, body)
			}
		})
	}
	resp, body := do(t, newTestServer(t, Config{}, nilSource{}).Handler(), "GET", "/v1/paths", nil, nil)
	checkJSONError(t, resp, body, 500, "listing paths: no path list")
	resp, body = do(t, newTestServer(t, Config{}, testSrc()).Handler(), "POST", "/v1/paths", nil, nil)
	checkJSONError(t, resp, body, 405, `method POST is not allowed on "/v1/paths"; allowed: GET, HEAD`)
}

func FuzzPathsJSON(f *testing.F) {
	f.Add([]byte(`{"paths":[{"name":"b","public_key":"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=","type":"direct",` +
		`"ice_state":"connected","endpoint":"[2001:db8::2]:51820","local_candidate":"srflx 203.0.113.11:51820",` +
		`"remote_candidate":"host 198.51.100.20:51820","since":"2026-03-01T11:58:30+01:00","restarts":"2",` +
		`"last_error":"","via":"hub"}]}`))
	f.Add([]byte(`{"paths":[{"iceState":"off","lastError":"\u00e9","restarts":18446744073709551615},{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.ListPathsResponse { return &roampb.ListPathsResponse{} })
	})
}
