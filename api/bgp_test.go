package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/roamnet/roam/api/apitest"
)

func TestNeighbors(t *testing.T) {
	h := newTestServer(t, Config{}, testSrc()).Handler()
	resp, body := do(t, h, "GET", "/v1/bgp/neighbors", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	// uint64 counters are strings; the neighbour that is not established has
	// no uptime and no counters.
	want := `{"neighbors":[` +
		`{"address":"100.64.0.2","asn":4200000002,"description":"b","kind":"roam","state":"established",` +
		`"uptime":"3723s","received":"2","accepted":"1","advertised":"3"},` +
		`{"address":"192.0.2.1","asn":64512,"description":"edge router","kind":"external","state":"active"}]}` + "\n"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
}

func TestRoutes(t *testing.T) {
	h := newTestServer(t, Config{}, testSrc()).Handler()
	resp, body := do(t, h, "GET", "/v1/routes", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	want := `{"originated":[{"prefix":"10.244.1.0/24","next_hop":"100.64.0.1","local_pref":100,"best":true}],` +
		`"learned":[` +
		`{"prefix":"10.244.2.0/24","next_hop":"100.64.0.2","as_path":[4200000002],"local_pref":100,"best":true,"from":"100.64.0.2","from_name":"b"},` +
		`{"prefix":"198.51.100.0/24","next_hop":"192.0.2.1","as_path":[64512,64496],"med":10,"from":"192.0.2.1","from_name":"edge router","stale":true}],` +
		`"installed":[` +
		`{"prefix":"10.244.2.0/24","device":"roam0","peer":"b","table":254},` +
		`{"prefix":"198.51.100.0/24","device":"eth1","gateway":"192.0.2.1","table":254,"stale":true}]}` + "\n"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
}

// A node without neighbours, routes or services answers with empty objects.
func TestBGPEmpty(t *testing.T) {
	h := newTestServer(t, Config{}, &apitest.Source{}).Handler()
	for _, path := range []string{"/v1/bgp/neighbors", "/v1/routes", "/v1/services"} {
		resp, body := do(t, h, "GET", path, nil, nil)
		if resp.StatusCode != http.StatusOK || body != "{}\n" {
			t.Errorf("GET %s: %d %q, want 200 {}", path, resp.StatusCode, body)
		}
	}
}

// Every Source error reaches the client with the status it asks for and
// the operation that failed.
func TestBGPSourceErrors(t *testing.T) {
	disabled := fmt.Errorf("bgp: %w", ErrDisabled)
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		err          error
		code         int
		msg          string
	}{
		{"neighbors disabled", "GET", "/v1/bgp/neighbors", "", disabled, 409, "listing BGP neighbors: BGP is not enabled on this node"},
		{"routes disabled", "GET", "/v1/routes", "", disabled, 409, "listing routes: BGP is not enabled on this node"},
		{"services disabled", "GET", "/v1/services", "", disabled, 409, "listing services: BGP is not enabled on this node"},
		{"add disabled", "POST", "/v1/services", `{"prefix":"10.96.0.0/24"}`, disabled, 409, "adding service 10.96.0.0/24: BGP is not enabled on this node"},
		{"delete disabled", "DELETE", "/v1/services/10.96.0.0/24", "", disabled, 409, "deleting service 10.96.0.0/24: BGP is not enabled on this node"},
		// The message says BGP is off even if the Source words it otherwise.
		{"disabled reworded", "GET", "/v1/routes", "", &wrapped{"bgp off", ErrDisabled}, 409, "listing routes: BGP is not enabled on this node"},
		{"add conflict", "POST", "/v1/services", `{"prefix":"fd00:96::/64"}`, fmt.Errorf("bgp: fd00:96::/64 is announced by bgp.prefixes: %w", ErrConflict), 409,
			"adding service fd00:96::/64: bgp: fd00:96::/64 is announced by bgp.prefixes: conflict"},
		{"delete not found", "DELETE", "/v1/services/10.97.0.0/24", "", fmt.Errorf("bgp: service 10.97.0.0/24: %w", ErrNotFound), 404,
			"deleting service 10.97.0.0/24: bgp: service 10.97.0.0/24: not found"},
		{"neighbors unavailable", "GET", "/v1/bgp/neighbors", "", fmt.Errorf("bgp: %w", ErrUnavailable), 503, "listing BGP neighbors: bgp: not available yet"},
		{"add unavailable", "POST", "/v1/services", `{"prefix":"10.96.0.0/24"}`, ErrUnavailable, 503, "adding service 10.96.0.0/24: not available yet"},
		{"routes failure", "GET", "/v1/routes", "", errors.New("bgp: speaker stopped"), 500, "listing routes: bgp: speaker stopped"},
		{"delete failure", "DELETE", "/v1/services/10.96.0.0%2F24", "", errors.New("bgp: withdraw failed"), 500, "deleting service 10.96.0.0/24: bgp: withdraw failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testSrc()
			src.SetErr(tc.err)
			h := newTestServer(t, Config{TokenFile: writeToken(t, testToken, 0o600)}, src).Handler()
			resp, body := do(t, h, tc.method, tc.path, strings.NewReader(tc.body), bearer(testToken))
			checkJSONError(t, resp, body, tc.code, tc.msg)
		})
	}
}

// wrapped wraps an error without repeating its text.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
