package api

import (
	"errors"
	"net/http"
)

// handleStatus serves GET /v1/status.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.src.Status(r.Context())
	if err == nil && st == nil {
		err = errors.New("no status")
	}
	if err != nil {
		s.sourceError(w, r, "reading status", err)
		return
	}
	writeMessage(w, http.StatusOK, st)
}

// handlePeers serves GET /v1/peers.
func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	peers, err := s.src.Peers(r.Context())
	if err == nil && peers == nil {
		err = errors.New("no peer list")
	}
	if err != nil {
		s.sourceError(w, r, "reading peers", err)
		return
	}
	writeMessage(w, http.StatusOK, peers)
}
