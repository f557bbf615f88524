package api

import (
	"errors"
	"net/http"
)

// handlePaths serves GET /v1/paths.
func (s *Server) handlePaths(w http.ResponseWriter, r *http.Request) {
	resp, err := s.src.Paths(r.Context())
	if err == nil && resp == nil {
		err = errors.New("no path list")
	}
	if err != nil {
		s.sourceErrorOf(w, r, "listing paths", "ICE (direct paths)", err)
		return
	}
	writeMessage(w, http.StatusOK, resp)
}
