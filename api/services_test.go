package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/roamnet/roam/api/apitest"
)

func TestServices(t *testing.T) {
	h := newTestServer(t, Config{}, testSrc()).Handler()
	resp, body := do(t, h, "GET", "/v1/services", nil, nil)
	want := `{"services":[{"prefix":"10.96.0.0/24"},{"prefix":"fd00:96::/64"}]}` + "\n"
	if resp.StatusCode != http.StatusOK || body != want {
		t.Errorf("got %d\n%s\nwant 200\n%s", resp.StatusCode, body, want)
	}
}

// serviceServer is a Server on testSrc with a token, logging into a buffer.
func serviceServer(t *testing.T) (http.Handler, *apitest.Source, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	src := testSrc()
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	s, err := NewServer(Config{TokenFile: writeToken(t, testToken, 0o600)}, src, log)
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler(), src, &logs
}

func TestAddService(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		code int
		want string // the body for 201, the error message for 400
	}{
		{"IPv4", `{"prefix":"10.96.0.0/24"}`, 201, `{"prefix":"10.96.0.0/24"}`},
		{"IPv6", `{"prefix":"fd00:96::/64"}`, 201, `{"prefix":"fd00:96::/64"}`},
		{"IPv6 written long", `{"prefix":"FD00:0096:0000::/64"}`, 201, `{"prefix":"fd00:96::/64"}`},
		{"host route", `{"prefix":"10.96.0.10/32"}`, 201, `{"prefix":"10.96.0.10/32"}`},
		{"white space", " {\n \"prefix\" : \"10.97.0.0/16\"\n}\n", 201, `{"prefix":"10.97.0.0/16"}`},

		{"empty body", ``, 400, "invalid request body: it is empty; want a JSON object"},
		{"malformed JSON", `{"prefix":`, 400, "invalid request body: "},
		{"not an object", `["10.96.0.0/24"]`, 400, "invalid request body: "},
		{"two objects", `{"prefix":"10.96.0.0/24"}{}`, 400, "invalid request body: "},
		{"unknown field", `{"prefx":"10.96.0.0/24"}`, 400, `invalid request body: (line 1:2): unknown field "prefx"; want a Service like {"prefix":"10.96.0.0/24"}`},
		{"number", `{"prefix":24}`, 400, "invalid value for string field prefix"},
		{"missing prefix", `{}`, 400, `missing prefix: want a Service like {"prefix":"10.96.0.0/24"}`},
		{"null prefix", `{"prefix":null}`, 400, "missing prefix"},
		{"empty prefix", `{"prefix":""}`, 400, "missing prefix"},
		{"address", `{"prefix":"10.96.0.0"}`, 400, `prefix "10.96.0.0" is not a prefix like 10.96.0.0/24 or fd00:96::/64: no '/'`},
		{"word", `{"prefix":"web"}`, 400, `prefix "web" is not a prefix like 10.96.0.0/24`},
		{"too long", `{"prefix":"10.96.0.0/33"}`, 400, `prefix "10.96.0.0/33" is not a prefix`},
		{"space", `{"prefix":" 10.96.0.0/24"}`, 400, `prefix " 10.96.0.0/24" is not a prefix`},
		{"zone", `{"prefix":"fe80::%eth0/64"}`, 400, `prefix "fe80::%eth0/64" is not a prefix`},
		{"host bits", `{"prefix":"10.96.0.1/24"}`, 400, `prefix "10.96.0.1/24" has host bits set: did you mean 10.96.0.0/24?`},
		{"IPv6 host bits", `{"prefix":"fd00:96::1/64"}`, 400, `prefix "fd00:96::1/64" has host bits set: did you mean fd00:96::/64?`},
		{"IPv4 default", `{"prefix":"0.0.0.0/0"}`, 400, `prefix "0.0.0.0/0" is a default route: a service prefix must be longer than /0`},
		{"IPv6 default", `{"prefix":"::/0"}`, 400, `prefix "::/0" is a default route`},
		{"default with host bits", `{"prefix":"10.0.0.0/0"}`, 400, `prefix "10.0.0.0/0" is a default route`},
		{"IPv4-mapped", `{"prefix":"::ffff:10.96.0.0/120"}`, 400, `prefix "::ffff:10.96.0.0/120" is an IPv4-mapped IPv6 prefix: write it as IPv4, 10.96.0.0/24`},
		{"IPv4-mapped all", `{"prefix":"::ffff:0:0/96"}`, 400, `prefix "::ffff:0:0/96" is an IPv4-mapped IPv6 prefix: write it as IPv4`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, src, logs := serviceServer(t)
			resp, body := do(t, h, "POST", "/v1/services", strings.NewReader(tc.body), bearer(testToken))
			calls := src.Calls()
			if tc.code == 201 {
				if resp.StatusCode != 201 || body != tc.want+"\n" {
					t.Errorf("got %d %q, want 201 %q", resp.StatusCode, body, tc.want)
				}
				svc := strings.TrimSuffix(strings.TrimPrefix(tc.want, `{"prefix":"`), `"}`)
				if loc := resp.Header.Get("Location"); loc != "/v1/services/"+svc {
					t.Errorf("Location %q, want /v1/services/%s", loc, svc)
				}
				if want := []string{"AddService " + svc}; !slices.Equal(calls, want) {
					t.Errorf("Source calls %q, want %q", calls, want)
				}
				return
			}
			checkJSONError(t, resp, body, tc.code, tc.want)
			if len(calls) != 0 {
				t.Errorf("a refused request reached the Source: %q", calls)
			}
			checkRefusalLogged(t, logs, "POST", "/v1/services", tc.code, tc.want)
		})
	}
	// The service is then listed.
	h, _, _ := serviceServer(t)
	do(t, h, "POST", "/v1/services", strings.NewReader(`{"prefix":"10.97.0.0/16"}`), bearer(testToken))
	if _, body := do(t, h, "GET", "/v1/services", nil, nil); !strings.Contains(body, `{"prefix":"10.97.0.0/16"}`) {
		t.Errorf("GET /v1/services after adding 10.97.0.0/16: %s", body)
	}
}

func TestDeleteService(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		code int
		want string // the Source call for 204, the error message for 400
	}{
		{"IPv4", "/v1/services/10.96.0.0/24", 204, "DeleteService 10.96.0.0/24"},
		{"escaped slash", "/v1/services/10.96.0.0%2F24", 204, "DeleteService 10.96.0.0/24"},
		{"escaped slash lower case", "/v1/services/10.96.0.0%2f24", 204, "DeleteService 10.96.0.0/24"},
		{"IPv6", "/v1/services/fd00:96::/64", 204, "DeleteService fd00:96::/64"},
		{"IPv6 escaped", "/v1/services/fd00%3A96%3A%3A%2F64", 204, "DeleteService fd00:96::/64"},
		{"host route", "/v1/services/10.96.0.10/32", 204, "DeleteService 10.96.0.10/32"},

		{"no prefix", "/v1/services/", 400, "missing prefix: want one like 10.96.0.0/24 or fd00:96::/64"},
		{"address", "/v1/services/10.96.0.0", 400, `prefix "10.96.0.0" is not a prefix like 10.96.0.0/24 or fd00:96::/64: no '/'`},
		{"extra segment", "/v1/services/10.96.0.0/24/x", 400, `prefix "10.96.0.0/24/x" is not a prefix`},
		{"host bits", "/v1/services/10.96.0.1/24", 400, `prefix "10.96.0.1/24" has host bits set: did you mean 10.96.0.0/24?`},
		{"default", "/v1/services/0.0.0.0%2F0", 400, `prefix "0.0.0.0/0" is a default route`},
		{"IPv6 default", "/v1/services/::/0", 400, `prefix "::/0" is a default route`},
		{"escaped garbage", "/v1/services/%FF", 400, `prefix "\xff" is not a prefix`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, src, logs := serviceServer(t)
			resp, body := do(t, h, "DELETE", tc.path, nil, bearer(testToken))
			calls := src.Calls()
			if tc.code == 204 {
				if resp.StatusCode != 204 || body != "" {
					t.Errorf("got %d %q, want 204 and no body", resp.StatusCode, body)
				}
				if want := []string{tc.want}; !slices.Equal(calls, want) {
					t.Errorf("Source calls %q, want %q", calls, want)
				}
				return
			}
			checkJSONError(t, resp, body, tc.code, strings.ToValidUTF8(tc.want, "\uFFFD"))
			if len(calls) != 0 {
				t.Errorf("a refused request reached the Source: %q", calls)
			}
			u, err := url.Parse(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			checkRefusalLogged(t, logs, "DELETE", strings.ToValidUTF8(u.Path, "\uFFFD"), tc.code, "")
		})
	}
	// The service is then gone.
	h, _, _ := serviceServer(t)
	do(t, h, "DELETE", "/v1/services/10.96.0.0/24", nil, bearer(testToken))
	if _, body := do(t, h, "GET", "/v1/services", nil, nil); body != `{"services":[{"prefix":"fd00:96::/64"}]}`+"\n" {
		t.Errorf("GET /v1/services after deleting 10.96.0.0/24: %s", body)
	}
}

// Mutating calls need the token, and the token is checked before the body or
// the path: a request without it learns nothing and changes nothing.
func TestServiceToken(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noFile bool // no token file configured
		header http.Header
		code   int
		msg    string
	}{
		{"no header", false, nil, 401, "missing bearer token"},
		{"wrong token", false, bearer("wrong"), 401, "invalid bearer token"},
		{"basic auth", false, http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 401, "missing bearer token"},
		{"no token configured", true, bearer(testToken), 403, "mutating calls are disabled: roamd has no API token file configured"},
	} {
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/v1/services", `{"prefix":"10.96.0.0/24"}`},
			{"POST", "/v1/services", `{"prefix":"10.96.0.1/24"}`}, // bad, but the token comes first
			{"DELETE", "/v1/services/10.96.0.0/24", ""},
			{"DELETE", "/v1/services/nonsense", ""},
		} {
			t.Run(tc.name+" "+req.method+" "+req.body+req.path, func(t *testing.T) {
				var logs bytes.Buffer
				src := testSrc()
				cfg := Config{TokenFile: writeToken(t, testToken, 0o600)}
				if tc.noFile {
					cfg.TokenFile = ""
				}
				s, err := NewServer(cfg, src, slog.New(slog.NewJSONHandler(&logs, nil)))
				if err != nil {
					t.Fatal(err)
				}
				resp, body := do(t, s.Handler(), req.method, req.path, strings.NewReader(req.body), tc.header)
				checkJSONError(t, resp, body, tc.code, tc.msg)
				if tc.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
					t.Errorf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
				}
				if calls := src.Calls(); len(calls) != 0 {
					t.Errorf("an unauthorised request reached the Source: %q", calls)
				}
				checkRefusalLogged(t, &logs, req.method, req.path, tc.code, tc.msg)
				if strings.Contains(logs.String(), testToken) {
					t.Errorf("the log holds the token: %s", logs.String())
				}
			})
		}
	}
	// Reading needs no token, even without a token file.
	h := newTestServer(t, Config{}, testSrc()).Handler()
	for _, path := range []string{"/v1/bgp/neighbors", "/v1/routes", "/v1/services"} {
		if resp, body := do(t, h, "GET", path, nil, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s without a token: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestServiceBodyLimit(t *testing.T) {
	h, src, logs := serviceServer(t)
	body := `{"prefix":"10.96.0.0/24"` + strings.Repeat(" ", maxBodyBytes) + `}`
	resp, got := do(t, h, "POST", "/v1/services", strings.NewReader(body), bearer(testToken))
	checkJSONError(t, resp, got, 413, "the limit is 65536")
	if calls := src.Calls(); len(calls) != 0 {
		t.Errorf("an oversized request reached the Source: %q", calls)
	}
	checkRefusalLogged(t, logs, "POST", "/v1/services", 413, "the limit is 65536")
}

// checkRefusalLogged checks that logs has one Warn record "request refused"
// with the method, path, status and a reason containing reason.
func checkRefusalLogged(t *testing.T, logs *bytes.Buffer, method, path string, code int, reason string) {
	t.Helper()
	var found int
	for line := range bytes.Lines(logs.Bytes()) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "request refused" {
			continue
		}
		found++
		r, _ := rec["reason"].(string)
		if rec["level"] != "WARN" || rec["component"] != "api" || rec["method"] != method || rec["path"] != path ||
			rec["status"] != float64(code) || !strings.Contains(r, reason) {
			t.Errorf("log record %s, want WARN %s %s %d reason %q", line, method, path, code, reason)
		}
	}
	if found != 1 {
		t.Errorf("%d records of the refusal, want 1:\n%s", found, logs)
	}
}
