package api

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/roamnet/roam/api/roampb"
)

const testToken = "s3cret-token-0123456789"

// writeToken writes a token file with the given mode.
func writeToken(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have cut bits
		t.Fatal(err)
	}
	return p
}

// echoHandler stands in for a mutating route that takes a body: it decodes a
// roampb.Error from the body and sends it back.
func echoHandler(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := s.readBody(w, r)
		if !ok {
			return
		}
		var m roampb.Error
		if err := unmarshalBody(b, &m); err != nil {
			s.refuse(w, r, http.StatusBadRequest, "%v", err)
			return
		}
		writeMessage(w, http.StatusOK, &m)
	})
}

// mutatingHandler is the Server's handler plus POST /v1/test/echo, a
// mutating route built the way real ones are.
func mutatingHandler(t *testing.T, tokenFile string) http.Handler {
	s := newTestServer(t, Config{TokenFile: tokenFile}, testSrc())
	return s.newHandler(route{http.MethodPost, "/v1/test/echo", s.requireToken(echoHandler(s))})
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestBearerToken(t *testing.T) {
	h := mutatingHandler(t, writeToken(t, testToken+"\n", 0o600))
	const body = `{"code":7,"message":"hi"}`
	for _, tc := range []struct {
		name      string
		header    http.Header
		code      int
		challenge string // WWW-Authenticate
		msg       string
	}{
		{"no header", nil, 401, `Bearer realm="roam"`, "missing bearer token"},
		{"basic auth", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 401, `Bearer realm="roam"`, "missing bearer token"},
		{"empty token", bearer(""), 401, `Bearer realm="roam"`, "missing bearer token"},
		{"wrong token", bearer("s3cret-token-0123456788"), 401, `Bearer realm="roam", error="invalid_token"`, "invalid bearer token"},
		{"prefix of token", bearer(testToken[:5]), 401, `Bearer realm="roam", error="invalid_token"`, "invalid bearer token"},
		{"token plus more", bearer(testToken + "x"), 401, `Bearer realm="roam", error="invalid_token"`, "invalid bearer token"},
		{"right token", bearer(testToken), 200, "", ""},
		{"lower-case scheme", http.Header{"Authorization": {"bearer " + testToken}}, 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := do(t, h, "POST", "/v1/test/echo", strings.NewReader(body), tc.header)
			if c := resp.Header.Get("WWW-Authenticate"); c != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", c, tc.challenge)
			}
			if tc.code == 200 {
				if resp.StatusCode != 200 || got != body+"\n" {
					t.Errorf("got %d %q, want 200 %q", resp.StatusCode, got, body)
				}
				return
			}
			checkJSONError(t, resp, got, tc.code, tc.msg)
		})
	}
}

func TestNoTokenRefusesMutatingCalls(t *testing.T) {
	h := mutatingHandler(t, "")
	for _, hdr := range []http.Header{nil, bearer(testToken), bearer("")} {
		resp, body := do(t, h, "POST", "/v1/test/echo", strings.NewReader(`{}`), hdr)
		checkJSONError(t, resp, body, 403, "mutating calls are disabled")
	}
	// Reading needs no token.
	if resp, _ := do(t, h, "GET", "/v1/status", nil, nil); resp.StatusCode != 200 {
		t.Errorf("GET /v1/status without token: %d", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	h := mutatingHandler(t, writeToken(t, testToken, 0o600))
	// A valid body of exactly the limit, and one byte more.
	pad := func(n int) string {
		prefix, suffix := `{"message":"`, `"}`
		return prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix
	}
	atLimit, overLimit := pad(maxBodyBytes), pad(maxBodyBytes+1)
	for _, tc := range []struct {
		name    string
		body    io.Reader
		chunked bool // no Content-Length
		path    string
		code    int
		msg     string
	}{
		{"at limit", strings.NewReader(atLimit), false, "/v1/test/echo", 200, ""},
		{"at limit chunked", strings.NewReader(atLimit), true, "/v1/test/echo", 200, ""},
		{"over limit", strings.NewReader(overLimit), false, "/v1/test/echo", 413, "request body is 65537 bytes; the limit is 65536"},
		{"over limit chunked", strings.NewReader(overLimit), true, "/v1/test/echo", 413, "request body is larger than 65536 bytes"},
		{"huge on a read-only route", bytes.NewReader(make([]byte, 1<<20)), false, "/v1/status", 413, "the limit is 65536"},
		{"huge on an unknown path", bytes.NewReader(make([]byte, 1<<20)), false, "/v1/nope", 413, "the limit is 65536"},
		{"bad JSON", strings.NewReader(`{"message":`), false, "/v1/test/echo", 400, "invalid request body"},
		{"unknown field", strings.NewReader(`{"mesage":"typo"}`), false, "/v1/test/echo", 400, `unknown field "mesage"`},
		{"read error", iotest.ErrReader(io.ErrUnexpectedEOF), true, "/v1/test/echo", 400, "reading the request body: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", "http://api"+tc.path, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.chunked {
				req.ContentLength = -1
			}
			req.Header = bearer(testToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			resp := rec.Result()
			got, _ := io.ReadAll(resp.Body)
			if tc.code == 200 {
				if resp.StatusCode != 200 {
					t.Errorf("status %d, body %.200s", resp.StatusCode, got)
				}
				return
			}
			checkJSONError(t, resp, string(got), tc.code, tc.msg)
		})
	}
}

func TestReadToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // error; "" = ok
	}{
		{"ok", testToken + "\n", 0o600, ""},
		{"read-only owner", "  " + testToken + " \n", 0o400, ""},
		{"group readable", testToken, 0o640, "has mode 0640: it must not be accessible by group or others (chmod 600)"},
		{"world readable", testToken, 0o644, "has mode 0644"},
		{"group writable", testToken, 0o620, "has mode 0620"},
		{"empty", " \n", 0o600, "is empty"},
		{"two words", "a b\n", 0o600, "holds more than one word"},
		{"too large", strings.Repeat("x", maxTokenBytes+1), 0o600, "is larger than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeToken(t, tc.content, tc.mode)
			h, err := readToken(p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if h != sha256.Sum256([]byte(testToken)) {
					t.Errorf("token hash differs")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "api: token file") {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := readToken(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("directory as token file: %v", err)
	}
}
