package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/bgp/fib"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// kernelFIB is the kernel routing table as fib.FIB sees it.
type kernelFIB interface {
	List() ([]fib.Route, error)
	Sync(want []fib.Route) (fib.Result, error)
	Update(prefixes []netip.Prefix, want []fib.Route) (fib.Result, error)
}

// Stale routes from a previous run are kept until every neighbour has been
// established for staleSettle (its initial updates are in), or staleMax.
const (
	staleSettle = 5 * time.Second
	staleMax    = 90 * time.Second
	// restartMarker is written into data_dir on a graceful shutdown; a start
	// within restartWindow of it is a graceful restart.
	restartMarker = "bgp-graceful-restart"
	restartWindow = 120 * time.Second
	// An install waits batchDelay after the first update of a batch for
	// more (a burst arrives one update at a time), at most batchMax.
	batchDelay = 5 * time.Millisecond
	batchMax   = 4096
	// resyncEvery re-applies the routes: the kernel deletes a gateway route
	// when its device goes down, and someone may delete one by hand.
	resyncEvery = 30 * time.Second
)

// fibSync installs the speaker's best paths: AllowedIPs of the next-hop
// peer for routes over the overlay, kernel routes via the gateway for routes
// from external neighbours. It owns the best-path table. Each batch of
// updates changes the plan (fibTable) and the kernel only where it touched
// them; the tunnel gets the whole AllowedIPs when they changed. At start,
// every resyncEvery and after a reload, everything is applied in full.
type fibSync struct {
	log     *slog.Logger
	speaker *bgp.Speaker
	kernel  kernelFIB
	// applyTunnel applies the tunnel state with extra AllowedIPs per peer;
	// peers returns the current configured peers (and their overlay index).
	applyTunnel func(map[wgtypes.Key][]netip.Prefix) error
	peers       func() ([]tunnel.Peer, map[netip.Addr]int)
	keepOnStop  bool // graceful restart: leave kernel routes in place on shutdown
	routes      *prometheus.GaugeVec

	installMu sync.Mutex // serialises install (Run and reloads); guards the two below
	tunnelOK  bool       // the last tunnel apply worked; else the next one applies everything
	kernelOK  bool       // the kernel has the plan's routes but for prefixes marked changed; else Sync

	mu    sync.Mutex
	table *fibTable // the plan, changed by each update
}

func newFIBSync(log *slog.Logger, s *bgp.Speaker, k kernelFIB, keep bool) *fibSync {
	return &fibSync{
		log: log.With("component", "fib"), speaker: s, kernel: k, keepOnStop: keep,
		table: newFIBTable(nil, nil, nil, nil),
		routes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roam_fib_routes",
			Help: "Learned routes roamd has installed, by where: tunnel (a peer's WireGuard AllowedIPs and a route into the tunnel device) or gateway (a kernel route via an underlay next hop).",
		}, []string{"via"}),
	}
}

// adopt reads the routes a previous run left in the kernel; they stay
// installed (stale) until the speaker confirms or replaces them.
func (f *fibSync) adopt() error {
	left, err := f.kernel.List()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.table = newFIBTable(f.table.best, f.table.peers, f.table.overlay, groupRoutes(left))
	f.mu.Unlock()
	if len(left) > 0 {
		f.log.Info("keeping routes of the previous run until BGP confirms them", "routes", len(left))
	}
	return nil
}

// Run installs best-path changes as they come until ctx is done or the
// speaker stops; then it removes the kernel routes it installed, unless
// keepOnStop (graceful restart: they keep forwarding while we are away).
func (f *fibSync) Run(ctx context.Context) error {
	updates := f.speaker.Updates()
	f.install()
	started := time.Now()
	settle := time.NewTicker(time.Second)
	defer settle.Stop()
	resync := time.NewTicker(resyncEvery)
	defer resync.Stop()
	var allUpSince time.Time
	for {
		select {
		case <-ctx.Done():
			return f.stop()
		case ev, ok := <-updates:
			if !ok {
				return f.stop()
			}
			f.apply(ev)
			open := f.gather(ctx, updates)
			f.installWith(false)
			if !open {
				return f.stop()
			}
		case <-resync.C:
			f.install()
		case <-settle.C:
			f.mu.Lock()
			stale := f.table.staleCount()
			f.mu.Unlock()
			if stale == 0 {
				continue
			}
			up := f.allEstablished(ctx)
			switch {
			case !up:
				allUpSince = time.Time{}
			case allUpSince.IsZero():
				allUpSince = time.Now()
			}
			if (up && time.Since(allUpSince) >= staleSettle) || time.Since(started) >= staleMax {
				f.mu.Lock()
				f.table.dropStale()
				f.mu.Unlock()
				f.log.Info("removing routes of the previous run that BGP did not confirm", "routes", stale)
				f.install()
			}
		}
	}
}

// gather applies the updates that arrive within batchDelay, at most
// batchMax, so that a burst is installed in one go. It returns false when
// updates is closed or ctx is done.
func (f *fibSync) gather(ctx context.Context, updates <-chan bgp.RouteEvent) bool {
	timer := time.NewTimer(batchDelay)
	defer timer.Stop()
	for range batchMax {
		select {
		case ev, ok := <-updates:
			if !ok {
				return false
			}
			f.apply(ev)
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (f *fibSync) allEstablished(ctx context.Context) bool {
	ns, err := f.speaker.Neighbors(ctx)
	if err != nil {
		return false
	}
	for _, n := range ns {
		if !n.Established() {
			return false
		}
	}
	return true
}

func (f *fibSync) apply(ev bgp.RouteEvent) {
	f.mu.Lock()
	why := f.table.set(ev)
	f.mu.Unlock()
	if why != "" {
		f.log.Debug("best path not installed", "prefix", ev.Route.Prefix, "reason", why)
	}
}

// install makes the tunnel and the kernel match the best paths in full.
func (f *fibSync) install() { f.installWith(true) }

// installWith applies what changed in the plan since the last install, or,
// with force, all of it: the whole AllowedIPs and a kernel Sync. A plan over
// other peers than the configured ones is made again and applied in full.
func (f *fibSync) installWith(force bool) {
	f.installMu.Lock()
	defer f.installMu.Unlock()
	peers, overlay := f.peers()
	f.mu.Lock()
	t := f.table
	if !t.samePeers(peers, overlay) {
		t = newFIBTable(t.best, peers, overlay, t.stale)
		f.table, force = t, true
	}
	var allowed map[wgtypes.Key][]netip.Prefix
	if t.takeTunnel() || force || !f.tunnelOK {
		allowed = t.allowedIPs()
	}
	var all, want []fib.Route
	var prefixes []netip.Prefix
	fullKernel := force || !f.kernelOK
	if fullKernel {
		t.takeKernel()
		all = t.kernel()
	} else {
		prefixes, want = t.takeKernel()
	}
	var skipped map[netip.Prefix]string
	if force && f.log.Enabled(context.Background(), slog.LevelDebug) {
		_, skipped = t.routes()
	}
	tun, gw := t.tunnel, t.gateway
	f.mu.Unlock()

	for p, why := range skipped {
		f.log.Debug("best path not installed", "prefix", p, "reason", why)
	}
	var errs []error
	if allowed != nil {
		err := f.applyTunnel(allowed)
		f.tunnelOK = err == nil
		errs = append(errs, err)
	}
	if fullKernel || len(prefixes) > 0 {
		var err error
		if fullKernel {
			_, err = f.kernel.Sync(all)
		} else {
			_, err = f.kernel.Update(prefixes, want)
		}
		// Routes that failed are tried again with the next batch; after
		// any other error, everything is.
		var se *fib.SyncError
		f.kernelOK = err == nil || errors.As(err, &se)
		if se != nil {
			failed := make([]netip.Prefix, len(se.Errors))
			for i, re := range se.Errors {
				failed[i] = re.Route.Prefix
			}
			f.mu.Lock()
			f.table.markKernel(failed)
			f.mu.Unlock()
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		f.log.Error("installing routes", "err", err)
	}
	f.routes.WithLabelValues("tunnel").Set(float64(tun))
	f.routes.WithLabelValues("gateway").Set(float64(gw))
}

// stop removes the kernel routes unless they are kept for a graceful
// restart. The tunnel's routes go with the tunnel device.
func (f *fibSync) stop() error {
	if f.keepOnStop {
		f.mu.Lock()
		n := f.table.tunnel + f.table.gateway
		f.mu.Unlock()
		f.log.Info("graceful restart: leaving installed routes in place", "routes", n)
		return nil
	}
	if _, err := f.kernel.Sync(nil); err != nil {
		return fmt.Errorf("fib: withdraw routes: %w", err)
	}
	return nil
}

// Installed returns where each learned best path is installed.
func (f *fibSync) Installed() []installed {
	f.mu.Lock()
	defer f.mu.Unlock()
	routes, _ := f.table.routes()
	return routes
}

// Collector is roam_fib_routes.
func (f *fibSync) Collector() prometheus.Collector { return f.routes }

// restarting reports whether this start follows a graceful shutdown within
// restartWindow, and consumes the marker.
func restarting(dataDir string, now time.Time) bool {
	path := filepath.Join(dataDir, restartMarker)
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	os.Remove(path)
	sec, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return false
	}
	age := now.Sub(time.Unix(sec, 0))
	return age >= 0 && age < restartWindow
}

// markRestart records a graceful shutdown for the next start.
func markRestart(dataDir string, now time.Time) error {
	return os.WriteFile(filepath.Join(dataDir, restartMarker), []byte(strconv.FormatInt(now.Unix(), 10)), 0o600)
}
