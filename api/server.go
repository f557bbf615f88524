package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/roamnet/roam/api/roampb"
)

// Source is what the daemon exposes to the API; roamd implements it.
// Methods are called concurrently, from request and scrape goroutines, and
// must return promptly when ctx is done. An error that wraps ErrUnavailable
// is answered with 503, ErrNotFound with 404, ErrConflict or ErrDisabled
// with 409, any other with 500.
type Source interface {
	// Status is the local node (GET /v1/status).
	Status(ctx context.Context) (*roampb.Status, error)
	// Peers are the WireGuard peers (GET /v1/peers).
	Peers(ctx context.Context) (*roampb.ListPeersResponse, error)

	// The BGP methods return an error wrapping ErrDisabled when BGP is not
	// enabled on this node.

	// BGPNeighbors are the BGP sessions (GET /v1/bgp/neighbors).
	BGPNeighbors(ctx context.Context) (*roampb.ListBgpNeighborsResponse, error)
	// Routes are the originated, learned and installed routes (GET
	// /v1/routes).
	Routes(ctx context.Context) (*roampb.ListRoutesResponse, error)
	// Services are the service prefixes the node announces (GET
	// /v1/services).
	Services(ctx context.Context) (*roampb.ListServicesResponse, error)
	// AddService starts announcing prefix (POST /v1/services) and returns
	// the service as it is now. The API has checked prefix with
	// ParseServicePrefix: it is masked, valid, not /0 and not IPv4-mapped.
	AddService(ctx context.Context, prefix netip.Prefix) (*roampb.Service, error)
	// DeleteService stops announcing prefix (DELETE /v1/services/{prefix});
	// checked as for AddService. A prefix that is not a service is an error
	// wrapping ErrNotFound.
	DeleteService(ctx context.Context, prefix netip.Prefix) error

	// Links are the measured tunnels to the peers (GET /v1/links). It
	// returns an error wrapping ErrDisabled when link probing is not enabled
	// on this node.
	Links(ctx context.Context) (*roampb.ListLinksResponse, error)

	// The event methods return an error wrapping ErrDisabled when mobility
	// is not enabled on this node.

	// Events are the handover events with an ID above after, oldest first,
	// with the highest ID so far, the revision of the events (one more for
	// every event begun, phase reached and event done) and the histograms
	// of every phase over all events, whatever after is (GET /v1/events).
	// It answers at once.
	Events(ctx context.Context, after uint64) (*roampb.ListEventsResponse, error)
	// WaitEvents blocks until the events' revision differs from revision
	// (take it from an Events answer: something changed since), then
	// returns nil; once ctx is done it returns ctx.Err(). It is the long
	// poll of GET /v1/events?wait=: the API calls Events and, only if that
	// answer has nothing new for the request, WaitEvents with the answer's
	// revision, then Events again.
	WaitEvents(ctx context.Context, revision uint64) error
	// Paths are the paths to the peers, direct or through a hub (GET
	// /v1/paths). It returns an error wrapping ErrDisabled when direct
	// paths (ICE) are not enabled on this node.
	Paths(ctx context.Context) (*roampb.ListPathsResponse, error)
}

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
	return logRequests(s.log, s.limitBody(maxBodyBytes, newRouter(routes)))
}

// routes lists the API's endpoints. Mutating routes (POST, DELETE) wrap their
// handler in s.requireToken and read their body with readBody.
func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/v1/status", http.HandlerFunc(s.handleStatus)},
		{http.MethodGet, "/v1/peers", http.HandlerFunc(s.handlePeers)},
		{http.MethodGet, "/v1/links", http.HandlerFunc(s.handleLinks)},
		{http.MethodGet, "/v1/events", http.HandlerFunc(s.handleEvents)},
		{http.MethodGet, "/v1/paths", http.HandlerFunc(s.handlePaths)},
		{http.MethodGet, "/v1/bgp/neighbors", http.HandlerFunc(s.handleNeighbors)},
		{http.MethodGet, "/v1/routes", http.HandlerFunc(s.handleRoutes)},
		{http.MethodGet, "/v1/services", http.HandlerFunc(s.handleServices)},
		{http.MethodPost, "/v1/services", s.requireToken(http.HandlerFunc(s.handleAddService))},
		{http.MethodDelete, "/v1/services/{prefix...}", s.requireToken(http.HandlerFunc(s.handleDeleteService))},
	}
}
