package api

import (
	"errors"
	"net/http"
)

// handleNeighbors serves GET /v1/bgp/neighbors.
func (s *Server) handleNeighbors(w http.ResponseWriter, r *http.Request) {
	resp, err := s.src.BGPNeighbors(r.Context())
	if err == nil && resp == nil {
		err = errors.New("no neighbor list")
	}
	if err != nil {
		s.sourceError(w, r, "listing BGP neighbors", err)
		return
	}
	writeMessage(w, http.StatusOK, resp)
}

// handleRoutes serves GET /v1/routes.
func (s *Server) handleRoutes(w http.ResponseWriter, r *http.Request) {
	resp, err := s.src.Routes(r.Context())
	if err == nil && resp == nil {
		err = errors.New("no route list")
	}
	if err != nil {
		s.sourceError(w, r, "listing routes", err)
		return
	}
	writeMessage(w, http.StatusOK, resp)
}
