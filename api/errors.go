package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors a Source wraps (with %w) to choose the HTTP status of its answer.
// Any other error is answered with 500.
var (
	// ErrUnavailable: the daemon cannot answer yet, e.g. while the tunnel
	// device is being set up. Answered with 503.
	ErrUnavailable = errors.New("not available yet")
	// ErrNotFound: the request names something that does not exist, e.g.
	// deleting a service the node does not have. Answered with 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts the daemon's state, e.g. adding
	// a service prefix another part of the configuration already announces.
	// Answered with 409.
	ErrConflict = errors.New("conflict")
	// ErrDisabled: the part of the daemon the request needs is not enabled
	// on this node: BGP (no neighbours, routes or services to show or
	// change) or link probing (no links to show). Answered with 409.
	ErrDisabled = errors.New("not enabled on this node")
)

// sourceError answers a failed Source call for the operation op (e.g.
// "listing services") with the status its error asks for; a cancelled
// request (the server is shutting down or the client left) gets 503. An
// error wrapping ErrDisabled is answered as BGP being off: the BGP methods
// are the ones that return it; see sourceErrorOf for the others.
func (s *Server) sourceError(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.sourceErrorOf(w, r, op, "BGP", err)
}

// sourceErrorOf is sourceError for a call that needs the part of the daemon
// named part ("BGP", "link probing"): an error wrapping ErrDisabled is
// answered with 409 and "op: part is not enabled on this node".
func (s *Server) sourceErrorOf(w http.ResponseWriter, r *http.Request, op, part string, err error) {
	code := http.StatusInternalServerError
	msg := fmt.Sprintf("%s: %v", op, err)
	switch {
	case errors.Is(err, ErrUnavailable) || r.Context().Err() != nil:
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrDisabled):
		code = http.StatusConflict
		// Say so in the same words whatever the Source wrapped around it.
		msg = fmt.Sprintf("%s: %s is %v", op, part, ErrDisabled)
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	}
	s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	writeError(w, code, "%s", msg)
}

// refuse answers a request the API will not pass to the Source (400, 401,
// 403, 413) and logs why at Warn.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	s.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "status", code, "reason", reason)
	writeError(w, code, "%s", reason)
}
