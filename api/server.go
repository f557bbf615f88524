package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"

	"github.com/roamnet/roam/api/roampb"
)

// Source is what the daemon exposes to the API; roamd implements it.
// Methods are called concurrently, from request and scrape goroutines, and
// must return promptly when ctx is done. An error that wraps ErrUnavailable
// is answered with 503, any other with 500.
type Source interface {
	Status(ctx context.Context) (*roampb.Status, error)
	Peers(ctx context.Context) (*roampb.ListPeersResponse, error)
}

// ErrUnavailable is what a Source returns (wrapped) when it cannot answer yet,
// e.g. while the tunnel device is being set up.
var ErrUnavailable = errors.New("not available yet")

// Server is the REST API.
type Server struct {
	src Source
	log *slog.Logger

	hasToken  bool              // a token file was configured
	tokenHash [sha256.Size]byte // SHA-256 of the bearer token

	handler http.Handler
	l       listener
}

// NewServer validates cfg and reads the token file. It starts nothing: call
// Run (after Listen, to learn the address first).
func NewServer(cfg Config, src Source, log *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("api: nil Source")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "api")
	s := &Server{src: src, log: log}
	if cfg.TokenFile != "" {
		h, err := readToken(cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		s.hasToken, s.tokenHash = true, h
	}
	s.handler = s.newHandler()
	s.l = listener{name: "REST API", addr: cfg.Addr, handler: s.handler, log: log}
	return s, nil
}

// Handler serves the API; Run serves it on its own listener. For tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listen address, so that Addr is known before Run. Calling
// it is optional: Run listens if it was not called. After a successful
// Listen, Run must be called (also with a cancelled ctx) to close the socket.
func (s *Server) Listen() error { return s.l.listen() }

// Addr is the address the server listens on, e.g. "127.0.0.1:7470"; "" before
// Listen or Run has bound it.
func (s *Server) Addr() string { return s.l.boundAddr() }

// Run serves the API until ctx is done, then shuts down gracefully. It
// returns nil on cancellation, after every connection has been closed.
func (s *Server) Run(ctx context.Context) error { return s.l.run(ctx) }

// newHandler builds the whole API: routes, with extra ones for tests, behind
// the body limit and the request log.
func (s *Server) newHandler(extra ...route) http.Handler {
	routes := append(s.routes(), extra...)
	return logRequests(s.log, limitBody(maxBodyBytes, newRouter(routes)))
}

// routes lists the API's endpoints. Mutating routes (POST, DELETE) wrap their
// handler in s.requireToken and read their body with decodeBody.
func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/v1/status", http.HandlerFunc(s.handleStatus)},
		{http.MethodGet, "/v1/peers", http.HandlerFunc(s.handlePeers)},
	}
}
