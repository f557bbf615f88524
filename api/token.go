package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// maxTokenBytes bounds the size of a token file.
const maxTokenBytes = 4096

// readToken reads the bearer token from path and returns its SHA-256 hash.
// The file must hold one non-empty token (surrounding white space is
// ignored) and must not be accessible by group or others.
func readToken(path string) ([sha256.Size]byte, error) {
	var zero [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("api: token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return zero, fmt.Errorf("api: token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return zero, fmt.Errorf("api: token file %q is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return zero, fmt.Errorf("api: token file %q has mode %04o: it must not be accessible by group or others (chmod 600)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return zero, fmt.Errorf("api: token file: %w", err)
	}
	if len(b) > maxTokenBytes {
		return zero, fmt.Errorf("api: token file %q is larger than %d bytes", path, maxTokenBytes)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) == 0 {
		return zero, fmt.Errorf("api: token file %q is empty", path)
	}
	if bytes.ContainsAny(tok, " \t\r\n") {
		return zero, fmt.Errorf("api: token file %q holds more than one word; want one token", path)
	}
	return sha256.Sum256(tok), nil
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header.
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// requireToken lets a request through only if it carries the configured
// bearer token. Mutating routes are wrapped in it. The token is compared by
// its SHA-256 hash in constant time, so neither its content nor its length
// leaks through timing.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hasToken {
			s.refuse(w, r, http.StatusForbidden, "mutating calls are disabled: roamd has no API token file configured")
			return
		}
		tok, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roam"`)
			s.refuse(w, r, http.StatusUnauthorized, "missing bearer token: send the header Authorization: Bearer <token>")
			return
		}
		h := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roam", error="invalid_token"`)
			s.refuse(w, r, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}
