package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// Fixed values of the fake Source.
var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	keyA    = "YDRwZ0pdIj9YhlxIQ4e7vJO6e8AJ8Ac3V2PbEGIjvE0="
	keyB    = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	keyC    = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
	testSrc = func() *apitest.Source {
		src := &apitest.Source{}
		src.SetStatus(&roampb.Status{
			Node:             "a",
			Version:          "0.1.0-test",
			Role:             "node",
			Uptime:           durationpb.New(90 * time.Second),
			PublicKey:        keyA,
			OverlayAddresses: []string{"100.64.0.1/32", "fd64::1/128"},
			ListenPort:       51820,
			TunnelMode:       "userspace",
			Device:           "roam0",
			Started:          timestamppb.New(t0),
		})
		src.SetPeers(
			&roampb.Peer{
				Name:                "b",
				PublicKey:           keyB,
				Endpoint:            "192.0.2.2:51820",
				LastHandshake:       timestamppb.New(t0.Add(-12 * time.Second)),
				RxBytes:             1234,
				TxBytes:             5 << 20,
				AllowedIps:          []string{"100.64.0.2/32", "10.244.2.0/24"},
				PersistentKeepalive: durationpb.New(25 * time.Second),
			},
			&roampb.Peer{
				Name:       "c",
				PublicKey:  keyC,
				AllowedIps: []string{"100.64.0.3/32"},
			},
		)
		src.SetNeighbors(
			&roampb.BgpNeighbor{
				Address: "100.64.0.2", Asn: 4200000002, Description: "b", Kind: "roam",
				State: "established", Uptime: durationpb.New(3723 * time.Second),
				Received: 2, Accepted: 1, Advertised: 3,
			},
			&roampb.BgpNeighbor{Address: "192.0.2.1", Asn: 64512, Description: "edge router", Kind: "external", State: "active"},
		)
		src.SetRoutes(&roampb.ListRoutesResponse{
			Originated: []*roampb.Route{{Prefix: "10.244.1.0/24", NextHop: "100.64.0.1", LocalPref: 100, Best: true}},
			Learned: []*roampb.Route{
				{Prefix: "10.244.2.0/24", NextHop: "100.64.0.2", AsPath: []uint32{4200000002}, LocalPref: 100, Best: true, From: "100.64.0.2", FromName: "b"},
				{Prefix: "198.51.100.0/24", NextHop: "192.0.2.1", AsPath: []uint32{64512, 64496}, Med: 10, From: "192.0.2.1", FromName: "edge router", Stale: true},
			},
			Installed: []*roampb.InstalledRoute{
				{Prefix: "10.244.2.0/24", Device: "roam0", Peer: "b", Table: 254},
				{Prefix: "198.51.100.0/24", Device: "eth1", Gateway: "192.0.2.1", Table: 254, Stale: true},
			},
		})
		src.SetServices(netip.MustParsePrefix("10.96.0.0/24"), netip.MustParsePrefix("fd00:96::/64"))
		src.SetLinks(
			// Up again after two flaps, its reflector counting both ways.
			&roampb.Link{
				Name: "b", PublicKey: keyB, Address: "100.64.0.2", Profile: "default",
				Interval: durationpb.New(time.Second), State: "up",
				Since: timestamppb.New(t0.Add(-5 * time.Minute)), Flaps: 2, Transitions: 5,
				Rtt: durationpb.New(12345 * time.Microsecond), Rttvar: durationpb.New(1500 * time.Microsecond),
				Jitter: durationpb.New(800 * time.Microsecond),
				Loss:   0.015, LossForward: 0.01, LossBackward: 0.005, LossDirections: true,
				Cost: 300, LocalPref: 200, ProbesSent: 4000, Replies: 3940, DownAfter: 3,
				HoldDown: durationpb.New(2 * time.Second),
			},
			// Never answered: down since start, no RTT.
			&roampb.Link{
				Name: "c", PublicKey: keyC, Address: "100.64.0.3", Profile: "metered",
				Interval: durationpb.New(10 * time.Second), State: "down",
				Loss: 1, Cost: 65535, ProbesSent: 7, Misses: 7, DownAfter: 3,
				HoldDown: durationpb.New(time.Second),
			},
		)
		return src
	}
)

// newTestServer is a Server on src with the default config.
func newTestServer(t *testing.T, cfg Config, src Source) *Server {
	t.Helper()
	s, err := NewServer(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do runs one request against h and returns the response and its body.
func do(t *testing.T, h http.Handler, method, target string, body io.Reader, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// checkJSONError checks that a response is a JSON roampb.Error with code and
// a message containing want.
func checkJSONError(t *testing.T, resp *http.Response, body string, code int, want string) {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("status %d, want %d; body %s", resp.StatusCode, code, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e roampb.Error
	if err := unmarshalOptions.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q is not a roampb.Error: %v", body, err)
	}
	if int(e.Code) != code {
		t.Errorf("error code %d, want %d", e.Code, code)
	}
	if !strings.Contains(e.Message, want) {
		t.Errorf("error message %q does not contain %q", e.Message, want)
	}
}
