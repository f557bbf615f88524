package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// now is the clock of every test run.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	keyA = "YDRwZ0pdIj9YhlxIQ4e7vJO6e8AJ8Ac3V2PbEGIjvE0="
	keyB = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	keyC = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
	keyH = "hubHUBhubHUBhubHUBhubHUBhubHUBhubHUBhubHUB0="
)

func fakeSource() *apitest.Source {
	src := &apitest.Source{}
	src.SetStatus(&roampb.Status{
		Node:             "a",
		Version:          "0.1.0",
		Role:             "node",
		Uptime:           durationpb.New(3*time.Hour + 4*time.Minute + 5*time.Second),
		PublicKey:        keyA,
		OverlayAddresses: []string{"100.64.0.1/32", "fd64::1/128"},
		ListenPort:       51820,
		TunnelMode:       "userspace",
		Device:           "roam0",
		Started:          timestamppb.New(now.Add(-(3*time.Hour + 4*time.Minute + 5*time.Second))),
	})
	src.SetPeers(
		&roampb.Peer{
			Name: "hub", PublicKey: keyH, Endpoint: "203.0.113.1:51820",
			LastHandshake: timestamppb.New(now.Add(-12 * time.Second)),
			RxBytes:       1 << 30, TxBytes: 1536,
			AllowedIps: []string{"100.64.0.254/32", "10.244.0.0/16"},
		},
		&roampb.Peer{
			Name: "b", PublicKey: keyB, Endpoint: "[2001:db8::2]:51820",
			LastHandshake: timestamppb.New(now.Add(-(2*time.Minute + 5*time.Second))),
			RxBytes:       999, TxBytes: 5 << 20,
			AllowedIps: []string{"100.64.0.2/32"},
		},
		&roampb.Peer{Name: "c", PublicKey: keyC, AllowedIps: []string{"100.64.0.3/32"}},
	)
	return src
}

// startAPI serves the real api.Server on src with httptest.
func startAPI(t *testing.T, src api.Source) string {
	t.Helper()
	s, err := api.NewServer(api.Config{}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// roamctl runs the command line with env as its environment.
func roamctl(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{
		stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] },
		now:    func() time.Time { return now },
	}
	code = c.run(context.Background(), args)
	return code, out.String(), errOut.String()
}

func TestStatus(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, fakeSource())
	// --api wins over ROAMCTL_API.
	env := map[string]string{"ROAMCTL_API": "http://127.0.0.1:1"}
	code, out, errOut := roamctl(t, env, "--api", url, "status")
	want := `node:              a
role:              node
version:           0.1.0
public key:        ` + keyA + `
overlay addresses: 100.64.0.1/32, fd64::1/128
device:            roam0
tunnel mode:       userspace
listen port:       51820
started:           2026-03-01T08:55:55Z
uptime:            3h4m
`
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
}

func TestStatusEmpty(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, &apitest.Source{})
	code, out, _ := roamctl(t, nil, "--api", url, "status")
	if code != 0 || !strings.Contains(out, "public key:        -\n") || !strings.Contains(out, "uptime:            -\n") {
		t.Errorf("exit %d, stdout\n%s\nwant dashes for unset fields", code, out)
	}
}

func TestPeersTable(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, fakeSource())
	// ROAMCTL_API instead of --api.
	code, out, errOut := roamctl(t, map[string]string{"ROAMCTL_API": url}, "peers")
	want := `NAME  PUBLIC KEY  ENDPOINT             HANDSHAKE  RX       TX       ALLOWED IPS
b     xTIBA5rb…   [2001:db8::2]:51820  2m5s ago   999 B    5.0 MiB  100.64.0.2/32
c     TrMvSoP4…   -                    never      0 B      0 B      100.64.0.3/32
hub   hubHUBhu…   203.0.113.1:51820    12s ago    1.0 GiB  1.5 KiB  100.64.0.254/32,10.244.0.0/16
`
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
}

func TestJSONOutput(t *testing.T) {
	apitest.CheckGoroutines(t)
	url := startAPI(t, fakeSource())
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the output
	}{
		{"peers -o json", []string{"--api", url, "peers", "-o", "json"},
			[]string{`"public_key":"` + keyB + `"`, `"rx_bytes":"1073741824"`, `"last_handshake":"2026-03-01T11:59:48Z"`}},
		{"-o json peers", []string{"--api", url, "-o", "json", "peers"}, []string{`"name":"hub"`}},
		{"status -o json", []string{"--api", url, "status", "-o=json"}, []string{`"node":"a"`, `"uptime":"11045s"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := roamctl(t, nil, tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.HasPrefix(out, "{") || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "}\n") {
				t.Errorf("output is not the API's one-line JSON: %q", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %s lacks %s", out, w)
				}
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	apitest.CheckGoroutines(t)
	src := fakeSource()
	src.SetErr(errors.New("tunnel: device roam0 is gone"))
	url := startAPI(t, src)
	unavailable := &apitest.Source{}
	unavailable.SetErr(api.ErrUnavailable)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"source failure", []string{"--api", url, "peers"}, "roamctl: reading peers: tunnel: device roam0 is gone (HTTP 500)\n"},
		{"source failure json", []string{"--api", url, "status", "-o", "json"}, "roamctl: reading status: tunnel: device roam0 is gone (HTTP 500)\n"},
		{"unavailable", []string{"--api", startAPI(t, unavailable), "status"}, "roamctl: reading status: not available yet (HTTP 503)\n"},
		{"wrong path prefix", []string{"--api", url + "/prefix", "status"}, `roamctl: no such endpoint: GET "/prefix/v1/status" (HTTP 404)` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := roamctl(t, nil, tc.args...)
			if code != 1 || out != "" || errOut != tc.want {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestNotRoamd(t *testing.T) {
	apitest.CheckGoroutines(t)
	ts := httptest.NewServer(nil) // http.DefaultServeMux: text 404s
	defer ts.Close()
	code, _, errOut := roamctl(t, nil, "--api", ts.URL, "peers")
	if want := "roamctl: Not Found: 404 page not found (HTTP 404)\n"; code != 1 || errOut != want {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut, want)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	code, out, errOut := roamctl(t, nil, "--api", url, "status")
	want := "roamctl: cannot reach roamd at " + url + ": connection refused (is roamd running? point roamctl at its API with --api URL or ROAMCTL_API)\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut, want)
	}
	// The URL from ROAMCTL_API is the one named.
	if code, _, errOut := roamctl(t, map[string]string{"ROAMCTL_API": url}, "peers"); code != 1 || !strings.Contains(errOut, "at "+url+":") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestKeygen(t *testing.T) {
	code, out, errOut := roamctl(t, nil, "keygen")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", out)
	}
	priv, err := wgtypes.ParseKey(lines[0])
	if err != nil {
		t.Fatalf("private key %q: %v", lines[0], err)
	}
	pub, err := wgtypes.ParseKey(lines[1])
	if err != nil {
		t.Fatalf("public key %q: %v", lines[1], err)
	}
	if priv.PublicKey() != pub {
		t.Errorf("public key %s is not the one of private key %s (%s)", pub, priv, priv.PublicKey())
	}
	// Curve25519 clamping: a generated private key is usable as is.
	if priv[0]&7 != 0 || priv[31]&0x80 != 0 || priv[31]&0x40 == 0 {
		t.Errorf("private key %s is not clamped", priv)
	}
	_, again, _ := roamctl(t, nil, "keygen")
	if again == out {
		t.Error("two keygens printed the same keys")
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string // first line of stderr
	}{
		{"no command", nil, 2, "roamctl: no command"},
		{"unknown command", []string{"stat"}, 2, `roamctl: unknown command "stat"`},
		{"unknown flag", []string{"--apu", "x", "status"}, 2, "roamctl: flag provided but not defined: -apu"},
		{"missing flag value", []string{"status", "-o"}, 2, "roamctl: flag needs an argument: -o"},
		{"bad output", []string{"peers", "-o", "yaml"}, 2, `roamctl: -o "yaml": want table or json`},
		{"extra argument", []string{"peers", "b"}, 2, `roamctl: peers: unexpected argument "b"`},
		{"keygen argument", []string{"keygen", "-o", "json"}, 2, "roamctl: flag provided but not defined: -o"},
		{"bad URL", []string{"--api", "127.0.0.1:7470", "status"}, 2, `roamctl: --api "127.0.0.1:7470": want a URL like http://127.0.0.1:7470`},
		{"bad scheme", []string{"--api", "unix:///run/roamd.sock", "status"}, 2, `roamctl: --api "unix:///run/roamd.sock": want a URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := roamctl(t, nil, tc.args...)
			first, rest, _ := strings.Cut(errOut, "\n")
			if code != tc.code || out != "" || first != tc.msg && !strings.HasPrefix(first, tc.msg) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.code, tc.msg)
			}
			if !strings.Contains(rest, "usage: roamctl") {
				t.Errorf("stderr lacks the usage: %q", errOut)
			}
		})
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"peers", "-h"}} {
		code, out, errOut := roamctl(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "usage: roamctl") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
