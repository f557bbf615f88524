package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors callers branch on.
var (
	// ErrNotRunning is returned by queries made while Run is not running.
	ErrNotRunning = errors.New("bgp: speaker is not running")
	// ErrNotAnnounced is returned by Withdraw for a prefix never announced.
	ErrNotAnnounced = errors.New("bgp: prefix is not announced")
)

// updatesBuffer is the capacity of the Updates channel. The queue behind it
// coalesces per prefix, so a full channel never blocks GoBGP.
const updatesBuffer = 256

// Speaker is an embedded BGP speaker (GoBGP v3).
type Speaker struct {
	cfg          Config // as validated by New; the neighbours are in nbrs
	log          *slog.Logger
	nbrs         *neighborTable // the configured neighbours
	policy       *policySpec
	updates      chan RouteEvent
	queue        *updateQueue
	updatesTotal *prometheus.CounterVec
	started      atomic.Bool

	// nbrMu serialises changes to the neighbours (Run adding them,
	// SetNeighbors, SetQuality, dropOverLimit) and guards the fields below
	// and policy.groups.
	nbrMu   sync.Mutex
	peering *server.BgpServer          // GoBGP with the neighbours in nbrs; nil unless Run is running
	members map[neighborGroup][]string // the neighbour sets in peering
	quality qualityState               // see SetQuality

	// mu guards the fields below and serialises changes to what we
	// originate, so the originated prefix sets and GoBGP's paths stay in
	// step.
	mu         sync.Mutex
	srv        *server.BgpServer // non-nil while Run is running
	accepted   *acceptedPaths    // set with srv
	originated map[netip.Prefix]*origin
}

// origin is one prefix this node announces.
type origin struct {
	nextHop netip.Addr
	uuid    []byte // GoBGP's id of the path; nil until added to a running server
}

// New validates cfg and returns a Speaker. It starts nothing; see Run.
func New(cfg Config, log *slog.Logger) (*Speaker, error) {
	cfg.Neighbors = append([]Neighbor(nil), cfg.Neighbors...)
	cfg.ListenAddresses = append([]netip.Addr(nil), cfg.ListenAddresses...)
	cfg.OverlayPool = append([]netip.Prefix(nil), cfg.OverlayPool...)
	cfg.InternalPrefixes = append([]netip.Prefix(nil), cfg.InternalPrefixes...)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Speaker{
		cfg:          cfg,
		log:          log.With("component", "bgp"),
		nbrs:         newNeighborTable(cfg.Neighbors),
		policy:       newPolicySpec(&cfg),
		updates:      make(chan RouteEvent, updatesBuffer),
		queue:        newUpdateQueue(),
		updatesTotal: newUpdatesCounter(),
		originated:   make(map[netip.Prefix]*origin),
	}, nil
}

// Config returns the validated configuration with defaults filled in, and
// the neighbours as SetNeighbors last set them, sorted by address.
func (s *Speaker) Config() Config {
	c := s.cfg
	c.Neighbors = s.nbrs.list()
	return c
}

// Updates delivers best-path changes (from GoBGP's best-path watch, including
// the initial table and this node's own originated prefixes). Bursts are
// coalesced per prefix. The channel is closed when Run returns.
func (s *Speaker) Updates() <-chan RouteEvent { return s.updates }

func (s *Speaker) acceptedPaths() *acceptedPaths {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func (s *Speaker) server() (*server.BgpServer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil, ErrNotRunning
	}
	return s.srv, nil
}

// Run starts the BGP server, installs policies, originates what was
// announced, adds the neighbours and serves until ctx is cancelled. It then
// stops BGP and returns after GoBGP has stopped (GoBGP v3.37.0 leaves one
// parked goroutine per server, its Serve loop). With graceful restart on, it
// first closes the established sessions' TCP connections without a
// NOTIFICATION, so that neighbours keep our routes as stale for the restart
// time (120 s) and refresh them when a restarted speaker (Config.Restarting)
// comes back; with DisableGracefulRestart, neighbours get a Cease and flush
// our routes at once. It returns nil on cancellation, and an error if
// startup failed or GoBGP reported a fatal error (for example its gRPC
// address could not be bound). Run may be called once.
func (s *Speaker) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("bgp: Run called twice")
	}
	defer close(s.updates)

	logs := newLogAdapter(s.log)
	gobgpGlobals.Lock()
	srv := server.NewBgpServer(server.GrpcListenAddress(s.cfg.GRPCAddress), server.LoggerOption(logs))
	gobgpGlobals.Unlock()
	// Serve has no way to return in GoBGP v3.37.0: this goroutine stays
	// parked in reflect.Select after Stop (one per Speaker, no CPU).
	go srv.Serve()

	watchCtx, cancelWatch := context.WithCancel(context.Background())
	mon := newMonitor(s.log, s.nbrs, s.policy.rules, s.isOriginated, logs)
	mon.overLimit = func(addr netip.Addr) { s.dropOverLimit(watchCtx, srv, addr) }
	var wg sync.WaitGroup
	stop := func() {
		s.mu.Lock()
		s.srv, s.accepted = nil, nil
		for _, o := range s.originated {
			o.uuid = nil
		}
		s.mu.Unlock()
		s.nbrMu.Lock()
		s.peering, s.members = nil, nil
		s.nbrMu.Unlock()
		cancelWatch()
		s.endSessions(srv, mon.established())
		srv.Stop() // StopBgp and stop gRPC
		wg.Wait()
	}

	if err := s.start(ctx, srv, watchCtx, mon); err != nil {
		stop()
		if ferr := logs.failed(); ferr != nil {
			return errors.Join(err, ferr)
		}
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.queue.pump(watchCtx, s.updates, s.countDelivered)
	}()
	s.log.Info("bgp speaker started", "asn", s.cfg.ASN, "router_id", s.cfg.RouterID,
		"listen_port", s.cfg.ListenPort, "grpc", s.cfg.GRPCAddress, "neighbors", s.nbrs.len(),
		"graceful_restart", s.cfg.GracefulRestart(), "restarting", s.cfg.GracefulRestart() && s.cfg.Restarting, "transit", s.cfg.Transit)

	select {
	case <-ctx.Done():
	case <-logs.fired:
	}
	stop()
	if err := logs.failed(); err != nil {
		return err
	}
	s.log.Info("bgp speaker stopped")
	return nil
}

// start brings srv from nothing to peering, in the order GoBGP needs:
// StartBgp (which resets policy), policies, originated paths, the watches,
// then neighbours. It holds nbrMu throughout, so that the neighbours added
// are those the policies were built for.
func (s *Speaker) start(ctx context.Context, srv *server.BgpServer, watchCtx context.Context, mon *monitor) error {
	s.nbrMu.Lock()
	defer s.nbrMu.Unlock()
	nbrs := s.nbrs.list()
	for _, n := range nbrs {
		if n.Password == "" {
			continue
		}
		if err := probeTCPMD5(n.Address, n.Password, s.cfg.ListenPort != -1); err != nil {
			return fmt.Errorf("bgp: neighbor %s has a password, but %w", n.Address, err)
		}
	}
	gobgpGlobals.Lock()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: s.global()})
	gobgpGlobals.Unlock()
	if err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	members := neighborSets(nbrs)
	if err := installPolicies(ctx, srv, s.policy, members); err != nil {
		return err
	}
	s.members = members
	s.quality.reset()
	if err := s.syncQualityLocked(ctx, srv, nbrs, nbrs); err != nil {
		return err
	}
	s.mu.Lock()
	s.srv = srv
	for p, o := range s.originated {
		if err := s.originateLocked(ctx, p, o); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	err = srv.WatchEvent(watchCtx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true}},
	}}, syncedWith(srv, s.onWatchEvent))
	if err != nil {
		return fmt.Errorf("bgp: watch best paths: %w", err)
	}
	if err := srv.WatchEvent(watchCtx, monitorRequest(), syncedWith(srv, mon.handle)); err != nil {
		return fmt.Errorf("bgp: watch neighbors: %w", err)
	}
	accepted := newAcceptedPaths()
	if err := srv.WatchEvent(watchCtx, acceptedRequest(), syncedWith(srv, accepted.handle)); err != nil {
		return fmt.Errorf("bgp: watch accepted routes: %w", err)
	}
	s.mu.Lock()
	s.accepted = accepted
	s.mu.Unlock()
	for _, n := range nbrs {
		if err := s.addPeerLocked(ctx, srv, n, s.cfg.Restarting); err != nil {
			return fmt.Errorf("bgp: add neighbor %s: %w", n.Address, err)
		}
	}
	s.peering = srv
	return nil
}

// onWatchEvent runs on GoBGP's watcher goroutine: translate and queue, never
// block.
func (s *Speaker) onWatchEvent(r *api.WatchEventResponse) {
	for _, p := range r.GetTable().GetPaths() {
		rt, err := routeFromPath(p)
		if err != nil {
			s.log.Warn("bgp: ignoring best path", "err", err)
			continue
		}
		rt.Best = !p.IsWithdraw
		s.queue.push(RouteEvent{Route: rt, Withdrawn: p.IsWithdraw})
	}
}

// syncedWith wraps a watch callback so that, once it has run, it makes a
// round trip through srv's main loop. GoBGP v3.37.0 converts a path for a
// watcher on the watcher's goroutine and later marks the same path stale in
// place on its main loop (graceful restart shares the path's origin info
// between clones), with nothing ordering the two: the race detector reports
// it. The round trip orders the conversion before everything the main loop
// does afterwards.
func syncedWith(srv *server.BgpServer, fn func(*api.WatchEventResponse)) func(*api.WatchEventResponse) {
	return func(r *api.WatchEventResponse) {
		fn(r)
		_, _ = srv.GetBgp(context.Background(), &api.GetBgpRequest{}) // only the round trip matters
	}
}

// shutdownGrace bounds how long Run waits for its sessions to go down
// before stopping GoBGP.
const shutdownGrace = 5 * time.Second

// endSessions takes every session down before StopBgp. With graceful
// restart on, it first closes the established sessions without a
// NOTIFICATION (see closeSessions): a Cease, which GoBGP turns into a Hard
// Reset when RFC 8538 is negotiated and which BIRD 2 answers by flushing our
// routes whatever was negotiated, would end the neighbours' graceful
// restart. Then it disables every neighbour (a Cease, administrative
// shutdown, on sessions still up; none reconnects) and waits until no
// session is established: StopBgp clears the global configuration that
// established sessions' receive loops read (a data race in GoBGP v3.37.0).
func (s *Speaker) endSessions(srv *server.BgpServer, established []session) {
	if s.cfg.GracefulRestart() && len(established) > 0 {
		n, err := closeSessions(established)
		if err != nil {
			s.log.Warn("bgp: cannot close sessions for graceful restart; neighbors get a Cease and flush our routes", "err", err)
		} else {
			s.log.Info("bgp: closed sessions without notification for graceful restart", "sessions", n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if g, err := srv.GetBgp(ctx, &api.GetBgpRequest{}); err != nil || g.GetGlobal().GetAsn() == 0 || s.nbrs.len() == 0 {
		return // BGP not started, or nothing to take down
	}
	if err := srv.DisablePeer(ctx, &api.DisablePeerRequest{Communication: "roamd is stopping"}); err != nil {
		s.log.Warn("bgp: disable neighbors before stopping", "err", err)
	}
	for {
		up := 0
		err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
				up++
			}
		})
		if err != nil || up == 0 {
			return
		}
		select {
		case <-ctx.Done():
			s.log.Warn("bgp: sessions still up when stopping", "sessions", up)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// gobgpGlobals serialises GoBGP calls that write package globals
// (NewBgpServer sets grpc.EnableTracing; StartBgp sets
// table.SelectionOptions and table.UseMultiplePaths), so several speakers in
// one process (tests) do not race.
var gobgpGlobals sync.Mutex

// dropOverLimit drops the routes of a neighbour GoBGP tore down for sending
// more prefixes than its limit. GoBGP may record that session's end as a
// graceful restart (the socket error can win over the Cease it sent) and
// then keeps every route the neighbour sent, over the limit too, as stale
// for the restart time. Deleting the neighbour drops them; it is added back
// administratively down, as GoBGP leaves a neighbour over its limit
// (`gobgp neighbor ADDR enable` brings it back). Nothing is done if the
// neighbour is no longer held down for its limit: SetNeighbors removed or
// replaced it meanwhile.
func (s *Speaker) dropOverLimit(ctx context.Context, srv *server.BgpServer, addr netip.Addr) {
	s.nbrMu.Lock()
	defer s.nbrMu.Unlock()
	n, ok := s.nbrs.get(addr)
	if !ok || s.peering != srv || ctx.Err() != nil {
		return
	}
	held := false
	err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
		held = p.GetState().GetAdminState() == api.PeerState_PFX_CT
	})
	if err != nil || !held {
		return
	}
	if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		s.log.Warn("bgp: cannot drop the routes of a neighbor over its limit", "neighbor", addr, "err", err)
		return
	}
	p := s.peer(n, false)
	p.Conf.AdminDown = true
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		s.log.Error("bgp: cannot add back a neighbor after dropping its routes", "neighbor", addr, "err", err)
	}
}
