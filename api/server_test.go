package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// var _ Source = (*apitest.Source)(nil) in a test: apitest must not import api.
var _ Source = (*apitest.Source)(nil)

func TestStatus(t *testing.T) {
	src := testSrc()
	h := newTestServer(t, Config{}, src).Handler()
	resp, body := do(t, h, "GET", "/v1/status", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// The exact bytes a user sees: proto names, RFC 3339, durations in s.
	want := `{"node":"a","version":"0.1.0-test","role":"node","uptime":"90s",` +
		`"public_key":"` + keyA + `","overlay_addresses":["100.64.0.1/32","fd64::1/128"],` +
		`"listen_port":51820,"tunnel_mode":"userspace","device":"roam0",` +
		`"started":"2026-03-01T12:00:00Z"}` + "\n"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
	var got roampb.Status
	if err := unmarshalOptions.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	wantSt, _ := src.Status(t.Context())
	if !proto.Equal(&got, wantSt) {
		t.Errorf("decoded %v, want %v", &got, wantSt)
	}
}

func TestPeers(t *testing.T) {
	h := newTestServer(t, Config{}, testSrc()).Handler()
	resp, body := do(t, h, "GET", "/v1/peers", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	// Peer c shows what is left out: no endpoint, no handshake, no traffic,
	// no keepalive. int64 counters are strings.
	want := `{"peers":[` +
		`{"name":"b","public_key":"` + keyB + `","endpoint":"192.0.2.2:51820",` +
		`"last_handshake":"2026-03-01T11:59:48Z","rx_bytes":"1234","tx_bytes":"5242880",` +
		`"allowed_ips":["100.64.0.2/32","10.244.2.0/24"],"persistent_keepalive":"25s"},` +
		`{"name":"c","public_key":"` + keyC + `","allowed_ips":["100.64.0.3/32"]}]}` + "\n"
	if body != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
}

func TestNoPeers(t *testing.T) {
	h := newTestServer(t, Config{}, &apitest.Source{}).Handler()
	resp, body := do(t, h, "GET", "/v1/peers", nil, nil)
	if resp.StatusCode != http.StatusOK || body != "{}\n" {
		t.Errorf("got %d %q, want 200 {}", resp.StatusCode, body)
	}
}

func TestRoutingErrors(t *testing.T) {
	h := newTestServer(t, Config{}, testSrc()).Handler()
	for _, tc := range []struct {
		name, method, path string
		code               int
		allow, msg         string
	}{
		{"unknown path", "GET", "/v1/nope", 404, "", `no such endpoint: GET "/v1/nope"`},
		{"root", "GET", "/", 404, "", "no such endpoint"},
		{"trailing slash", "GET", "/v1/status/", 404, "", "no such endpoint"},
		{"unknown version", "GET", "/v2/status", 404, "", "no such endpoint"},
		{"post status", "POST", "/v1/status", 405, "GET, HEAD", `method POST is not allowed on "/v1/status"; allowed: GET, HEAD`},
		{"delete peers", "DELETE", "/v1/peers", 405, "GET, HEAD", "method DELETE is not allowed"},
		{"put peers", "PUT", "/v1/peers", 405, "GET, HEAD", "allowed: GET, HEAD"},
		{"post links", "POST", "/v1/links", 405, "GET, HEAD", `method POST is not allowed on "/v1/links"; allowed: GET, HEAD`},
		{"one link", "GET", "/v1/links/b", 404, "", "no such endpoint"},
		{"bgp root", "GET", "/v1/bgp", 404, "", `no such endpoint: GET "/v1/bgp"`},
		{"post neighbors", "POST", "/v1/bgp/neighbors", 405, "GET, HEAD", "method POST is not allowed"},
		{"delete routes", "DELETE", "/v1/routes", 405, "GET, HEAD", "method DELETE is not allowed"},
		{"put services", "PUT", "/v1/services", 405, "GET, HEAD, POST", `method PUT is not allowed on "/v1/services"; allowed: GET, HEAD, POST`},
		{"delete all services", "DELETE", "/v1/services", 405, "GET, HEAD, POST", "method DELETE is not allowed"},
		{"get one service", "GET", "/v1/services/10.96.0.0/24", 405, "DELETE", `method GET is not allowed on "/v1/services/10.96.0.0/24"; allowed: DELETE`},
		{"post one service", "POST", "/v1/services/10.96.0.0/24", 405, "DELETE", "allowed: DELETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, h, tc.method, tc.path, nil, nil)
			checkJSONError(t, resp, body, tc.code, tc.msg)
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"failure", errors.New("tunnel: device roam0 is gone"), 500, "reading %s: tunnel: device roam0 is gone"},
		{"unavailable", fmt.Errorf("tunnel: %w", ErrUnavailable), 503, "reading %s: tunnel: not available yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testSrc()
			src.SetErr(tc.err)
			h := newTestServer(t, Config{}, src).Handler()
			for _, what := range []string{"status", "peers"} {
				resp, body := do(t, h, "GET", "/v1/"+what, nil, nil)
				checkJSONError(t, resp, body, tc.code, fmt.Sprintf(tc.msg, what))
			}
		})
	}
}

// nilSource answers with nothing and no error: a bug in the daemon.
type nilSource struct{}

func (nilSource) Status(context.Context) (*roampb.Status, error)           { return nil, nil }
func (nilSource) Peers(context.Context) (*roampb.ListPeersResponse, error) { return nil, nil }
func (nilSource) BGPNeighbors(context.Context) (*roampb.ListBgpNeighborsResponse, error) {
	return nil, nil
}
func (nilSource) Routes(context.Context) (*roampb.ListRoutesResponse, error)     { return nil, nil }
func (nilSource) Services(context.Context) (*roampb.ListServicesResponse, error) { return nil, nil }
func (nilSource) AddService(context.Context, netip.Prefix) (*roampb.Service, error) {
	return nil, nil
}
func (nilSource) DeleteService(context.Context, netip.Prefix) error        { return nil }
func (nilSource) Links(context.Context) (*roampb.ListLinksResponse, error) { return nil, nil }
func (nilSource) Events(context.Context, uint64) (*roampb.ListEventsResponse, error) {
	return nil, nil
}
func (nilSource) WaitEvents(context.Context, uint64) error                 { return nil }
func (nilSource) Paths(context.Context) (*roampb.ListPathsResponse, error) { return nil, nil }

func TestNilFromSource(t *testing.T) {
	s := newTestServer(t, Config{TokenFile: writeToken(t, testToken, 0o600)}, nilSource{})
	for _, tc := range []struct {
		method, path, body string
		msg                string
	}{
		{"GET", "/v1/status", "", "reading status: no status"},
		{"GET", "/v1/peers", "", "reading peers: no peer list"},
		{"GET", "/v1/links", "", "listing links: no link list"},
		{"GET", "/v1/bgp/neighbors", "", "listing BGP neighbors: no neighbor list"},
		{"GET", "/v1/routes", "", "listing routes: no route list"},
		{"GET", "/v1/services", "", "listing services: no service list"},
		{"POST", "/v1/services", `{"prefix":"10.96.0.0/24"}`, "adding service 10.96.0.0/24: no service"},
	} {
		resp, body := do(t, s.Handler(), tc.method, tc.path, strings.NewReader(tc.body), bearer(testToken))
		checkJSONError(t, resp, body, 500, tc.msg)
	}
}

func TestInvalidUTF8InMessages(t *testing.T) {
	src := testSrc()
	src.SetStatus(&roampb.Status{Node: "bad\xffname"})
	h := newTestServer(t, Config{}, src).Handler()
	resp, body := do(t, h, "GET", "/v1/status", nil, nil)
	checkJSONError(t, resp, body, 500, "encoding the response")
	resp, body = do(t, h, "GET", "/v1/\xff", nil, nil)
	checkJSONError(t, resp, body, 404, "no such endpoint")
	if !strings.Contains(body, `\\xff`) {
		t.Errorf("body %s: want the bad byte quoted", body)
	}
}

func TestNewServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		src  Source
		want string
	}{
		{"nil source", Config{}, nil, "api: nil Source"},
		{"no port", Config{Addr: "127.0.0.1"}, testSrc(), `api: addr "127.0.0.1": want host:port`},
		{"bad port", Config{Addr: "127.0.0.1:http"}, testSrc(), `api: addr "127.0.0.1:http": port "http" is not a number in 0-65535`},
		{"port too big", Config{Addr: ":65536"}, testSrc(), `port "65536" is not a number`},
		{"missing token file", Config{TokenFile: "/nonexistent/token"}, testSrc(), "api: token file: open /nonexistent/token: no such file"},
		{"token file readable by others", Config{TokenFile: writeToken(t, testToken, 0o644)}, testSrc(), "must not be accessible by group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(tc.cfg, tc.src, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
