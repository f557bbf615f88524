package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
	Sync([]fib.Route) (fib.Result, error)
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
	// batchMax bounds how many updates are folded into one install.
	batchMax = 4096
	// resyncEvery re-applies the routes: the kernel deletes a gateway route
	// when its device goes down, and someone may delete one by hand.
	resyncEvery = 30 * time.Second
)

// fibSync installs the speaker's best paths: AllowedIPs of the next-hop
// peer for routes over the overlay, kernel routes via the gateway for routes
// from external neighbours. It owns the best-path table.
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

	installMu   sync.Mutex // serialises install (Run and reloads); guards the two below
	lastAllowed map[wgtypes.Key][]netip.Prefix
	lastKernel  []fib.Route

	mu        sync.Mutex
	best      map[netip.Prefix]bgp.Route
	stale     []fib.Route
	installed []installed
	skipped   map[netip.Prefix]string
}

func newFIBSync(log *slog.Logger, s *bgp.Speaker, k kernelFIB, keep bool) *fibSync {
	return &fibSync{
		log: log.With("component", "fib"), speaker: s, kernel: k, keepOnStop: keep,
		best: map[netip.Prefix]bgp.Route{}, skipped: map[netip.Prefix]string{},
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
	f.stale = left
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
		drain:
			for n := 0; n < batchMax; n++ {
				select {
				case ev, ok := <-updates:
					if !ok {
						break drain
					}
					f.apply(ev)
				default:
					break drain
				}
			}
			f.installWith(false)
		case <-resync.C:
			f.install()
		case <-settle.C:
			f.mu.Lock()
			stale := len(f.stale)
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
				f.stale = nil
				f.mu.Unlock()
				f.log.Info("removing routes of the previous run that BGP did not confirm", "routes", stale)
				f.install()
			}
		}
	}
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
	defer f.mu.Unlock()
	if ev.Withdrawn {
		delete(f.best, ev.Route.Prefix)
		return
	}
	f.best[ev.Route.Prefix] = ev.Route
}

// install makes the tunnel and the kernel match the best paths.
func (f *fibSync) install() { f.installWith(true) }

// installWith applies the plan; unless force, the tunnel and the kernel are
// left alone where the plan did not change since the last good apply (a
// batch of updates usually touches one of them only).
func (f *fibSync) installWith(force bool) {
	f.installMu.Lock()
	defer f.installMu.Unlock()
	peers, overlay := f.peers()
	f.mu.Lock()
	plan := planFIB(f.best, peers, overlay, f.stale)
	f.mu.Unlock()
	for p, why := range plan.skipped {
		f.log.Debug("best path not installed", "prefix", p, "reason", why)
	}
	var errs []error
	if force || f.lastAllowed == nil || !maps.EqualFunc(plan.allowed, f.lastAllowed, slices.Equal) {
		f.lastAllowed = nil
		if err := f.applyTunnel(plan.allowed); err != nil {
			errs = append(errs, err)
		} else {
			f.lastAllowed = plan.allowed
		}
	}
	if force || f.lastKernel == nil || !slices.Equal(plan.kernel, f.lastKernel) {
		f.lastKernel = nil
		if _, err := f.kernel.Sync(plan.kernel); err != nil {
			errs = append(errs, err)
		} else {
			f.lastKernel = append([]fib.Route{}, plan.kernel...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		f.log.Error("installing routes", "err", err)
	}
	var tun, gw int
	for _, r := range plan.routes {
		if r.Peer != "" {
			tun++
		} else {
			gw++
		}
	}
	f.routes.WithLabelValues("tunnel").Set(float64(tun))
	f.routes.WithLabelValues("gateway").Set(float64(gw))
	f.mu.Lock()
	f.installed, f.skipped = plan.routes, plan.skipped
	f.mu.Unlock()
}

// stop removes the kernel routes unless they are kept for a graceful
// restart. The tunnel's routes go with the tunnel device.
func (f *fibSync) stop() error {
	if f.keepOnStop {
		f.mu.Lock()
		n := len(f.installed)
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
	return append([]installed(nil), f.installed...)
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
