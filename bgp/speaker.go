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

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
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
	cfg     Config
	log     *slog.Logger
	updates chan RouteEvent
	queue   *updateQueue
	started atomic.Bool

	// mu guards the fields below and serialises changes to what we
	// originate, so the originated prefix sets and GoBGP's paths stay in
	// step.
	mu         sync.Mutex
	srv        *server.BgpServer // non-nil while Run is running
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
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Speaker{
		cfg:        cfg,
		log:        log.With("component", "bgp"),
		updates:    make(chan RouteEvent, updatesBuffer),
		queue:      newUpdateQueue(),
		originated: make(map[netip.Prefix]*origin),
	}, nil
}

// Config returns the validated configuration with defaults filled in.
func (s *Speaker) Config() Config { return s.cfg }

// Updates delivers best-path changes (from GoBGP's best-path watch, including
// the initial table and this node's own originated prefixes). Bursts are
// coalesced per prefix. The channel is closed when Run returns.
func (s *Speaker) Updates() <-chan RouteEvent { return s.updates }

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
// stops BGP (neighbours get a Cease) and returns. It returns nil on
// cancellation, and an error if startup failed or GoBGP reported a fatal
// error (for example its gRPC address could not be bound). Run may be called
// once.
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
	var wg sync.WaitGroup
	stop := func() {
		s.mu.Lock()
		s.srv = nil
		for _, o := range s.originated {
			o.uuid = nil
		}
		s.mu.Unlock()
		cancelWatch()
		srv.Stop() // StopBgp (Cease to every neighbour) and stop gRPC
		wg.Wait()
	}

	if err := s.start(ctx, srv, watchCtx); err != nil {
		stop()
		if ferr := logs.failed(); ferr != nil {
			return errors.Join(err, ferr)
		}
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.queue.pump(watchCtx, s.updates)
	}()
	s.log.Info("bgp speaker started", "asn", s.cfg.ASN, "router_id", s.cfg.RouterID,
		"listen_port", s.cfg.ListenPort, "grpc", s.cfg.GRPCAddress, "neighbors", len(s.cfg.Neighbors))

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
// StartBgp (which resets policy), policies, originated paths, the best-path
// watch, then neighbours.
func (s *Speaker) start(ctx context.Context, srv *server.BgpServer, watchCtx context.Context) error {
	gobgpGlobals.Lock()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: s.global()})
	gobgpGlobals.Unlock()
	if err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	if err := installPolicies(ctx, srv, s.cfg.Neighbors); err != nil {
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
	}}, s.onWatchEvent)
	if err != nil {
		return fmt.Errorf("bgp: watch best paths: %w", err)
	}
	for _, n := range s.cfg.Neighbors {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peer(n)}); err != nil {
			return fmt.Errorf("bgp: add neighbor %s: %w", n.Address, err)
		}
	}
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

// gobgpGlobals serialises GoBGP calls that write package globals
// (NewBgpServer sets grpc.EnableTracing; StartBgp sets
// table.SelectionOptions and table.UseMultiplePaths), so several speakers in
// one process (tests) do not race.
var gobgpGlobals sync.Mutex
