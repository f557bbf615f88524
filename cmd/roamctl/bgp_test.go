package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

const testToken = "s3cret-token-0123456789"

// bgpSource is fakeSource with BGP neighbours, routes and services.
func bgpSource() *apitest.Source {
	src := fakeSource()
	src.SetNeighbors(
		&roampb.BgpNeighbor{Address: "192.0.2.1", Asn: 64512, Description: "edge", Kind: "external", State: "active"},
		&roampb.BgpNeighbor{
			Address: "100.64.0.254", Asn: 4200000254, Description: "hub", Kind: "roam", State: "established",
			Uptime: durationpb.New(26*time.Hour + 3*time.Minute), Received: 12, Accepted: 11, Advertised: 2,
		},
		&roampb.BgpNeighbor{
			Address: "100.64.0.2", Asn: 4200000002, Description: "b", Kind: "roam", State: "established",
			Uptime: durationpb.New(3*time.Minute + 4*time.Second), Received: 1, Accepted: 1, Advertised: 2,
		},
		&roampb.BgpNeighbor{Address: "2001:db8::1", Asn: 64513, Kind: "external", State: "idle"},
	)
	src.SetRoutes(&roampb.ListRoutesResponse{
		Originated: []*roampb.Route{
			{Prefix: "10.96.0.0/24", NextHop: "100.64.0.1", LocalPref: 100, Best: true},
			{Prefix: "10.244.1.0/24", NextHop: "100.64.0.1", LocalPref: 100, Best: true},
		},
		Learned: []*roampb.Route{
			{Prefix: "10.244.2.0/24", NextHop: "100.64.0.254", AsPath: []uint32{4200000254, 4200000002}, LocalPref: 100,
				From: "100.64.0.254", FromName: "hub"},
			{Prefix: "10.244.2.0/24", NextHop: "100.64.0.2", AsPath: []uint32{4200000002}, LocalPref: 100, Best: true,
				From: "100.64.0.2", FromName: "b"},
			{Prefix: "198.51.100.0/24", NextHop: "192.0.2.1", AsPath: []uint32{64512, 64496}, Med: 10, Best: true, Stale: true,
				From: "192.0.2.1"},
		},
		Installed: []*roampb.InstalledRoute{
			{Prefix: "198.51.100.0/24", Device: "eth1", Gateway: "192.0.2.1", Table: 254, Stale: true},
			{Prefix: "10.244.2.0/24", Device: "roam0", Peer: "b", Table: 254},
		},
	})
	src.SetServices(netip.MustParsePrefix("fd00:96::/64"), netip.MustParsePrefix("10.96.0.0/24"))
	return src
}

// startTokenAPI serves the real api.Server on src with a token file.
func startTokenAPI(t *testing.T, src api.Source) string {
	t.Helper()
	s, err := api.NewServer(api.Config{TokenFile: writeFile(t, testToken+"\n")}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// writeFile writes content to a new 0600 file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNeighborsTable(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, bgpSource())
	code, out, errOut := roamctl(t, nil, "--api", url, "neighbors")
	want := `NEIGHBOR  ADDRESS       KIND      ASN         STATE        UPTIME  RECEIVED  ACCEPTED  ADVERTISED
b         100.64.0.2    roam      4200000002  established  3m4s    1         1         2
hub       100.64.0.254  roam      4200000254  established  1d2h    12        11        2
edge      192.0.2.1     external  64512       active       -       0         0         0
-         2001:db8::1   external  64513       idle         -       0         0         0
`
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
}

func TestRoutesTable(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, bgpSource())
	code, out, errOut := roamctl(t, nil, "--api", url, "routes")
	want := `ORIGINATED
   PREFIX         NEXT HOP    AS PATH  LOCAL PREF  MED
*  10.96.0.0/24   100.64.0.1  -        100         0
*  10.244.1.0/24  100.64.0.1  -        100         0

LEARNED
    PREFIX           NEXT HOP      AS PATH                LOCAL PREF  MED  FROM
*   10.244.2.0/24    100.64.0.2    4200000002             100         0    b (100.64.0.2)
    10.244.2.0/24    100.64.0.254  4200000254 4200000002  100         0    hub (100.64.0.254)
*S  198.51.100.0/24  192.0.2.1     64512 64496            0           10   192.0.2.1

INSTALLED
   PREFIX           DEVICE  GATEWAY    PEER  TABLE
   10.244.2.0/24    roam0   -          b     254
S  198.51.100.0/24  eth1    192.0.2.1  -     254

* best path, S stale (kept through a graceful restart)
`
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
}

func TestRoutesEmpty(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, &apitest.Source{})
	code, out, errOut := roamctl(t, nil, "--api", url, "routes")
	want := "ORIGINATED\n(none)\n\nLEARNED\n(none)\n\nINSTALLED\n(none)\n"
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
}

func TestServiceList(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, bgpSource())
	code, out, errOut := roamctl(t, nil, "--api", url, "service", "list")
	if want := "PREFIX\n10.96.0.0/24\nfd00:96::/64\n"; code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout %q, want %q", code, errOut, out, want)
	}
}

// service add and del change what service list shows; the token comes from
// --token-file or ROAMCTL_TOKEN.
func TestServiceAddDel(t *testing.T) {
	apitest.CheckGoroutines(t)
	src := &apitest.Source{}
	url := startTokenAPI(t, src)
	tokenFile := writeFile(t, "  "+testToken+"\n")
	env := map[string]string{"ROAMCTL_API": url}
	withEnvToken := map[string]string{"ROAMCTL_API": url, "ROAMCTL_TOKEN": testToken}
	for _, step := range []struct {
		env  map[string]string
		args []string
		out  string
	}{
		{env, []string{"--token-file", tokenFile, "service", "add", "10.96.0.0/24"}, "service 10.96.0.0/24 added\n"},
		{withEnvToken, []string{"service", "add", "fd00:96::/64"}, "service fd00:96::/64 added\n"},
		{env, []string{"service", "add", "10.97.0.0/16", "--token-file", tokenFile}, "service 10.97.0.0/16 added\n"},
		{env, []string{"service", "list"}, "PREFIX\n10.96.0.0/24\n10.97.0.0/16\nfd00:96::/64\n"},
		{withEnvToken, []string{"service", "del", "10.96.0.0/24"}, "service 10.96.0.0/24 deleted\n"},
		{env, []string{"service", "--token-file=" + tokenFile, "del", "fd00:96::/64"}, "service fd00:96::/64 deleted\n"},
		{env, []string{"service", "list"}, "PREFIX\n10.97.0.0/16\n"},
	} {
		code, out, errOut := roamctl(t, step.env, step.args...)
		if code != 0 || out != step.out || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want %q", step.args, code, errOut, out, step.out)
		}
	}
	want := []string{"AddService 10.96.0.0/24", "AddService fd00:96::/64", "AddService 10.97.0.0/16",
		"DeleteService 10.96.0.0/24", "DeleteService fd00:96::/64"}
	if got := src.Calls(); !slices.Equal(got, want) {
		t.Errorf("roamd saw %q, want %q", got, want)
	}
}

// The request roamctl sends, as roamd's API documents it.
func TestServiceRequests(t *testing.T) {
	apitest.CheckGoroutines(t)
	type request struct{ method, path, auth, ctype, body string }
	var (
		mu  sync.Mutex
		got []request
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		switch r.Method {
		case "POST":
			w.WriteHeader(201)
			fmt.Fprintln(w, `{"prefix":"fd00:96::/64"}`)
		case "DELETE":
			w.WriteHeader(204)
		default:
			fmt.Fprintln(w, `{}`)
		}
	}))
	defer ts.Close()
	env := map[string]string{"ROAMCTL_API": ts.URL, "ROAMCTL_TOKEN": testToken}
	roamctl(t, env, "service", "add", "FD00:96::/64")
	roamctl(t, env, "service", "del", "fd00:96::/64")
	roamctl(t, env, "service", "list")
	roamctl(t, env, "routes")
	want := []request{
		{"POST", "/v1/services", "Bearer " + testToken, "application/json", `{"prefix":"fd00:96::/64"}`},
		{"DELETE", "/v1/services/fd00:96::/64", "Bearer " + testToken, "", ""},
		// Reading calls do not carry the token.
		{"GET", "/v1/services", "", "", ""},
		{"GET", "/v1/routes", "", "", ""},
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("requests\n%q\nwant\n%q", got, want)
	}
}

func TestBGPJSONOutput(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startTokenAPI(t, bgpSource())
	env := map[string]string{"ROAMCTL_API": url, "ROAMCTL_TOKEN": testToken}
	for _, tc := range []struct {
		name string
		args []string
		want string // the whole output
	}{
		{"service list", []string{"service", "list", "-o", "json"},
			`{"services":[{"prefix":"fd00:96::/64"},{"prefix":"10.96.0.0/24"}]}` + "\n"},
		{"service add", []string{"-o", "json", "service", "add", "10.97.0.0/16"}, `{"prefix":"10.97.0.0/16"}` + "\n"},
		{"service del", []string{"service", "del", "10.97.0.0/16", "-o=json"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := roamctl(t, env, tc.args...)
			if code != 0 || out != tc.want || errOut != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want %q", code, errOut, out, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"neighbors", "-o", "json"}, []string{`"address":"100.64.0.254"`, `"uptime":"93780s"`, `"received":"12"`}},
		{[]string{"-o", "json", "routes"}, []string{`"as_path":[4200000254,4200000002]`, `"stale":true`, `"from_name":"b"`, `"installed":[`}},
	} {
		code, out, errOut := roamctl(t, env, tc.args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "{") || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, output not the API's one-line JSON: %q", tc.args, code, errOut, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output %s lacks %s", tc.args, out, w)
			}
		}
	}
}

// Errors of the API reach the user with the API's message and exit 1.
func TestBGPAPIErrors(t *testing.T) {
	apitest.CheckGoroutines(t)
	src := bgpSource()
	url := startTokenAPI(t, src)
	noTokenAPI := startAPI(t, bgpSource())
	tokenFile := writeFile(t, testToken)
	wrongFile := writeFile(t, "not-the-token")
	for _, tc := range []struct {
		name   string
		srcErr error // what roamd's Source answers
		env    map[string]string
		args   []string
		want   string // stderr
	}{
		{"bgp off neighbors", fmt.Errorf("bgp: %w", api.ErrDisabled), nil, []string{"--api", url, "neighbors"},
			"roamctl: listing BGP neighbors: BGP is not enabled on this node (HTTP 409)\n"},
		{"bgp off routes json", fmt.Errorf("bgp: %w", api.ErrDisabled), nil, []string{"--api", url, "routes", "-o", "json"},
			"roamctl: listing routes: BGP is not enabled on this node (HTTP 409)\n"},
		{"bgp off service list", api.ErrDisabled, nil, []string{"--api", url, "service", "list"},
			"roamctl: listing services: BGP is not enabled on this node (HTTP 409)\n"},
		{"not a service", fmt.Errorf("10.98.0.0/24 is not a service prefix: %w", api.ErrNotFound), nil,
			[]string{"--api", url, "--token-file", tokenFile, "service", "del", "10.98.0.0/24"},
			"roamctl: deleting service 10.98.0.0/24: 10.98.0.0/24 is not a service prefix: not found (HTTP 404)\n"},
		{"conflict", fmt.Errorf("10.244.1.0/24 is in bgp.prefixes of the configuration already: %w", api.ErrConflict), nil,
			[]string{"--api", url, "--token-file", tokenFile, "service", "add", "10.244.1.0/24"},
			"roamctl: adding service 10.244.1.0/24: 10.244.1.0/24 is in bgp.prefixes of the configuration already: conflict (HTTP 409)\n"},
		{"unavailable", fmt.Errorf("bgp: %w", api.ErrUnavailable), nil, []string{"--api", url, "neighbors"},
			"roamctl: listing BGP neighbors: bgp: not available yet (HTTP 503)\n"},
		{"host bits", nil, nil, []string{"--api", url, "--token-file", tokenFile, "service", "add", "10.96.0.1/24"},
			`roamctl: prefix "10.96.0.1/24" has host bits set: did you mean 10.96.0.0/24? (HTTP 400)` + "\n"},
		{"default route", nil, nil, []string{"--api", url, "--token-file", tokenFile, "service", "del", "::/0"},
			`roamctl: prefix "::/0" is a default route: a service prefix must be longer than /0 (HTTP 400)` + "\n"},
		{"IPv4-mapped", nil, nil, []string{"--api", url, "--token-file", tokenFile, "service", "add", "::ffff:10.96.0.0/120"},
			`roamctl: prefix "::ffff:10.96.0.0/120" is an IPv4-mapped IPv6 prefix: write it as IPv4, 10.96.0.0/24 (HTTP 400)` + "\n"},
		{"no token", nil, nil, []string{"--api", url, "service", "add", "10.96.0.0/24"},
			"roamctl: missing bearer token: send the header Authorization: Bearer <token> (HTTP 401); " +
				"give roamctl roamd's API token with --token-file FILE or ROAMCTL_TOKEN\n"},
		{"wrong token file", nil, nil, []string{"--api", url, "--token-file", wrongFile, "service", "del", "10.96.0.0/24"},
			"roamctl: invalid bearer token (HTTP 401)\n"},
		{"wrong env token", nil, map[string]string{"ROAMCTL_TOKEN": "nope"}, []string{"--api", url, "service", "add", "10.96.0.0/24"},
			"roamctl: invalid bearer token (HTTP 401)\n"},
		// --token-file wins over ROAMCTL_TOKEN.
		{"file over env", nil, map[string]string{"ROAMCTL_TOKEN": testToken}, []string{"--api", url, "--token-file", wrongFile, "service", "add", "10.96.0.0/24"},
			"roamctl: invalid bearer token (HTTP 401)\n"},
		{"roamd without token", nil, nil, []string{"--api", noTokenAPI, "--token-file", tokenFile, "service", "add", "10.96.0.0/24"},
			"roamctl: mutating calls are disabled: roamd has no API token file configured (HTTP 403)\n"},
		{"missing token file", nil, nil, []string{"--api", url, "--token-file", "/nonexistent/token", "service", "add", "10.96.0.0/24"},
			"roamctl: --token-file: open /nonexistent/token: no such file or directory\n"},
		{"empty token file", nil, nil, []string{"--api", url, "--token-file", writeFile(t, "\n"), "service", "add", "10.96.0.0/24"},
			"roamctl: --token-file " + "%s" + ": the file is empty; want one token\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src.SetErr(tc.srcErr)
			defer src.SetErr(nil)
			before := len(src.Calls())
			code, out, errOut := roamctl(t, tc.env, tc.args...)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, tc.args[3])
			}
			if code != 1 || out != "" || errOut != want {
				t.Errorf("exit %d, stdout %q, stderr\n%q\nwant exit 1 and\n%q", code, out, errOut, want)
			}
			if tc.srcErr == nil && len(src.Calls()) != before {
				t.Errorf("a refused request reached roamd's Source: %q", src.Calls()[before:])
			}
		})
	}
}

func TestBGPUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		msg  string // first line of stderr
	}{
		{"service alone", []string{"service"}, "roamctl: service: missing subcommand: add, del or list"},
		{"service unknown", []string{"service", "rm", "10.96.0.0/24"}, `roamctl: service: unknown subcommand "rm"; want add, del or list`},
		{"add without prefix", []string{"service", "add"}, "roamctl: service add: missing PREFIX, e.g. 10.96.0.0/24"},
		{"del without prefix", []string{"service", "del", "-o", "json"}, "roamctl: service del: missing PREFIX"},
		{"add two prefixes", []string{"service", "add", "10.96.0.0/24", "10.97.0.0/24"}, `roamctl: service add: unexpected argument "10.97.0.0/24"`},
		{"list with argument", []string{"service", "list", "all"}, `roamctl: service list: unexpected argument "all"`},
		{"add address", []string{"service", "add", "10.96.0.1"}, `roamctl: service add: "10.96.0.1" is not a prefix like 10.96.0.0/24 or fd00:96::/64`},
		{"del path", []string{"service", "del", "../status"}, `roamctl: service del: "../status" is not a prefix`},
		{"neighbors argument", []string{"neighbors", "b"}, `roamctl: neighbors: unexpected argument "b"`},
		{"routes bad output", []string{"routes", "-o", "yaml"}, `roamctl: -o "yaml": want table or json`},
		{"token-file on routes", []string{"routes", "--token-file", "x"}, "roamctl: flag provided but not defined: -token-file"},
		{"token-file without value", []string{"service", "add", "10.96.0.0/24", "--token-file"}, "roamctl: flag needs an argument: -token-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := roamctl(t, nil, tc.args...)
			first, rest, _ := strings.Cut(errOut, "\n")
			if code != 2 || out != "" || !strings.HasPrefix(first, tc.msg) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, tc.msg)
			}
			if !strings.Contains(rest, "usage: roamctl") {
				t.Errorf("stderr lacks the usage: %q", errOut)
			}
		})
	}
	// "--" ends the flags: a prefix that looks like a flag is an argument.
	code, _, errOut := roamctl(t, nil, "service", "add", "--", "-o")
	if want := `roamctl: service add: "-o" is not a prefix`; code != 2 || !strings.HasPrefix(errOut, want) {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut, want)
	}
	for _, args := range [][]string{{"service", "-h"}, {"service", "add", "-h"}, {"neighbors", "--help"}} {
		code, out, errOut := roamctl(t, nil, args...)
		if code != 0 || !strings.Contains(out, "service add PREFIX") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
