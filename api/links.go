package api

import (
	"errors"
	"net/http"
)

// handleLinks serves GET /v1/links.
func (s *Server) handleLinks(w http.ResponseWriter, r *http.Request) {
	resp, err := s.src.Links(r.Context())
	if err == nil && resp == nil {
		err = errors.New("no link list")
	}
	if err != nil {
		s.sourceErrorOf(w, r, "listing links", "link probing", err)
		return
	}
	writeMessage(w, http.StatusOK, resp)
}
