package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/bgp/fib"
	"github.com/roamnet/roam/mobility"
	"github.com/roamnet/roam/probe"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// daemon wires the tunnel and the API together. The config's peers, and with
// them the BGP sessions with roam peers, change on SIGHUP; everything else is
// fixed for the process's life.
type daemon struct {
	path    string
	log     *slog.Logger
	key     wgtypes.Key
	started time.Time

	dev      *tunnel.Device // set by Run
	speaker  *bgp.Speaker   // set by Run when BGP is on
	fibs     *fibSync       // set with speaker
	services *services      // set with speaker
	prober   *probe.Prober  // set by Run when probing is on
	quality  *qualityPump   // set with prober when BGP is on
	mob      *mob           // signalling, ICE and handovers; set by Run

	events *mobility.Recorder // handover events

	mu  sync.Mutex
	cfg *Config // current, as in the file; guarded by mu

	applyMu sync.Mutex // serialises applyPeers

	// tunMu serialises Apply: the configured peers (base) and the
	// AllowedIPs BGP adds to them (learned) are applied together.
	tunMu   sync.Mutex
	base    tunnel.State
	overlay map[netip.Addr]int // overlay address -> index in base.Peers
	learned map[wgtypes.Key][]netip.Prefix

	closers []func() error // run when Run returns
}

func newDaemon(cfg *Config, path string, log *slog.Logger) (*daemon, error) {
	key, created, err := loadOrCreateKey(cfg.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	pub := key.PublicKey()
	for i, p := range cfg.peers {
		if p.key == pub {
			return nil, fmt.Errorf("%w: config: peers[%d].public_key is this node's own key", errConfig, i)
		}
	}
	if created {
		log.Info("created a new private key", "file", cfg.PrivateKeyFile, "public_key", pub.String())
	}
	return &daemon{path: path, log: log, key: key, cfg: cfg, started: time.Now(),
		events: mobility.NewRecorder(mobility.RecorderConfig{})}, nil
}

// Run brings the tunnel up, serves the API and metrics, reloads peers on
// SIGHUP, and on cancellation removes what it created.
func (d *daemon) Run(ctx context.Context) error {
	cfg := d.config()
	tc := tunnel.Config{Name: cfg.Tunnel.Device, Mode: cfg.Tunnel.Mode, MTU: cfg.Tunnel.MTU, Keep: cfg.Tunnel.Keep}
	if cfg.BGP != nil {
		tc.Table = cfg.BGP.Table // every route roamd installs goes into bgp.table
	}
	dev, err := tunnel.Open(tc, d.log)
	if err != nil {
		return err
	}
	d.dev = dev
	defer func() {
		if err := dev.Close(); err != nil {
			d.log.Error("close tunnel", "err", err)
		}
	}()
	if cfg.Role == "hub" {
		if err := enableForwarding(dev.Name()); err != nil {
			return err
		}
		d.log.Info("hub: forwarding between peers", "device", dev.Name())
	}
	st := d.state(ctx, cfg)
	if err := d.setBase(st, cfg); err != nil {
		return err
	}
	greet(st.Peers, d.log)
	apiSrv, err := api.NewServer(api.Config{Addr: cfg.API.Listen, TokenFile: cfg.API.TokenFile}, d, d.log)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	metrics, err := api.NewMetrics(api.MetricsConfig{Addr: cfg.Metrics.Listen}, d, d.log)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	defer func() {
		for _, c := range d.closers {
			c()
		}
	}()
	runs := []func(context.Context) error{apiSrv.Run, metrics.Run, d.reloadOnHUP}
	if cfg.BGP != nil {
		bgpRuns, err := d.startBGP(ctx, cfg, metrics)
		if err != nil {
			return err
		}
		runs = append(runs, bgpRuns...)
	}
	probeRuns, err := d.startProbing(cfg)
	if err != nil {
		return err
	}
	runs = append(runs, probeRuns...)
	mobRuns, err := d.startMobility(cfg)
	if err != nil {
		return err
	}
	runs = append(runs, mobRuns...)
	d.log.Info("started", "node", cfg.Node, "role", cfg.Role, "public_key", d.key.PublicKey().String(),
		"device", dev.Name(), "mode", dev.Mode(), "listen_port", cfg.ListenPort, "peers", len(cfg.peers))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(runs))
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	err = errors.Join(collect(errs)...)
	if err == nil {
		d.log.Info("stopping")
		if cfg.BGP != nil && *cfg.BGP.GracefulRestart {
			if err := markRestart(cfg.DataDir, time.Now()); err != nil {
				d.log.Warn("graceful restart: cannot record the shutdown; the next start is a cold start", "err", err)
			}
		}
	}
	return err
}

// startBGP builds the speaker, the FIB sync and the services, and returns
// what must run.
func (d *daemon) startBGP(ctx context.Context, cfg *Config, metrics *api.Metrics) ([]func(context.Context) error, error) {
	restart := *cfg.BGP.GracefulRestart && restarting(cfg.DataDir, time.Now())
	speaker, err := newSpeaker(ctx, cfg, restart, d.log)
	if err != nil {
		return nil, err
	}
	kernel, err := fib.New(fib.Config{Table: cfg.BGP.Table, Exclude: []string{d.dev.Name()}}, d.log)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, kernel.Close)
	fs := newFIBSync(d.log, speaker, kernel, *cfg.BGP.GracefulRestart)
	fs.applyTunnel, fs.peers = d.applyLearned, d.tunnelPeers
	if err := fs.adopt(); err != nil {
		return nil, err
	}
	sv := newServices(cfg.DataDir, speaker, cfg.BGP.prefixes, func(p netip.Prefix) netip.Addr { return nextHopFor(cfg, p) })
	if err := sv.load(ctx); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{speaker.Collector(), fs.Collector()} {
		if err := metrics.Registry().Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	d.speaker, d.fibs, d.services = speaker, fs, sv
	if restart {
		d.log.Info("graceful restart: peers keep our routes while we come back")
	}
	return []func(context.Context) error{speaker.Run, fs.Run}, nil
}

// setBase applies the configured tunnel state st (with what BGP learned).
func (d *daemon) setBase(st tunnel.State, cfg *Config) error {
	d.tunMu.Lock()
	defer d.tunMu.Unlock()
	d.base, d.overlay = st, overlayIndex(cfg.peers)
	return d.dev.Apply(withLearned(d.base, d.learned))
}

// applyLearned applies the AllowedIPs BGP adds to the configured peers.
func (d *daemon) applyLearned(learned map[wgtypes.Key][]netip.Prefix) error {
	d.tunMu.Lock()
	defer d.tunMu.Unlock()
	d.learned = learned
	return d.dev.Apply(withLearned(d.base, d.learned))
}

// tunnelPeers is the configured peers and their overlay address index.
func (d *daemon) tunnelPeers() ([]tunnel.Peer, map[netip.Addr]int) {
	d.tunMu.Lock()
	defer d.tunMu.Unlock()
	return d.base.Peers, d.overlay
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

func (d *daemon) config() *Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// reloadOnHUP re-reads the config file on SIGHUP and applies its peers to the
// tunnel and the BGP sessions; peers that did not change are left alone (no
// new handshake, no new session).
func (d *daemon) reloadOnHUP(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if err := d.reload(ctx); err != nil {
				d.log.Error("reload failed; keeping the running configuration", "err", err)
			}
		}
	}
}

func (d *daemon) reload(ctx context.Context) error {
	next, err := loadConfig(d.path)
	if err != nil {
		return err
	}
	cur := d.config()
	if fixed := fixedChanges(cur, next); len(fixed) > 0 {
		d.log.Warn("reload applies only peers; restart roamd for the other changes", "changed", fixed)
	}
	pub := d.key.PublicKey()
	for i, p := range next.peers {
		if p.key == pub {
			return fmt.Errorf("config: peers[%d].public_key is this node's own key", i)
		}
	}
	// Keep everything but the peers as it runs.
	merged := *cur
	merged.Peers, merged.peers = next.Peers, next.peers
	old := d.effective(cur)
	if err := d.applyPeers(ctx, &merged); err != nil {
		return err
	}
	greet(newPeers(old.peers, d.state(ctx, d.effective(&merged)).Peers), d.log)
	if d.mob != nil {
		d.mob.peersChanged()
		if d.mob.watcher != nil {
			d.mob.watcher.SetTargets(hubUnderlay(&merged))
		}
	}
	d.log.Info("reloaded", "peers", len(merged.peers))
	return nil
}

// applyPeers makes the tunnel, the BGP sessions and the probes follow the
// peers of cfg (the file's) and the direct paths found by ICE, and keeps cfg
// as the running configuration; a nil cfg is the running one, read under
// the lock (so a reload that runs meanwhile is not undone). Reloads and
// direct path changes call it; it is serialized.
func (d *daemon) applyPeers(ctx context.Context, cfg *Config) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if cfg == nil {
		cfg = d.config()
	}
	eff := d.effective(cfg)
	st := d.state(ctx, eff)
	if err := d.setBase(st, eff); err != nil {
		return err
	}
	if d.speaker != nil {
		// A session per roam peer: the speaker adds, removes and replaces
		// them and logs each change. External neighbours come from the bgp
		// section, which stays as it runs; without a bgp section the new
		// peers have no ASN, and the sessions stay too until the restart
		// fixedChanges asked for.
		if eff.BGP != nil {
			if err := d.speaker.SetNeighbors(ctx, bgpConfig(eff, false).Neighbors); err != nil {
				d.log.Error("BGP sessions do not all follow the peers", "err", err)
			}
		}
		// The learned routes are re-planned over the new peers.
		d.fibs.install()
	}
	if d.prober != nil {
		if err := d.prober.SetTargets(probeTargets(eff)); err != nil {
			d.log.Error("probes do not follow the peers", "err", err)
		}
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return nil
}

// newPeers are the peers of next whose key was not among old's.
func newPeers(old []peer, next []tunnel.Peer) []tunnel.Peer {
	known := map[wgtypes.Key]bool{}
	for _, p := range old {
		known[p.key] = true
	}
	var out []tunnel.Peer
	for _, p := range next {
		if !known[p.PublicKey] {
			out = append(out, p)
		}
	}
	return out
}

// fixedChanges names the top-level settings that differ and need a restart.
func fixedChanges(a, b *Config) []string {
	var out []string
	va, vb := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() || f.Name == "Peers" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, f.Tag.Get("yaml"))
		}
	}
	return out
}

// state is the tunnel's desired state for cfg. Endpoints given as host
// names are resolved now; one that does not resolve is left out (WireGuard
// learns it when the peer talks) and logged.
func (d *daemon) state(ctx context.Context, cfg *Config) tunnel.State {
	s := tunnel.State{PrivateKey: d.key, ListenPort: cfg.ListenPort, Addresses: cfg.addrs}
	for _, p := range cfg.peers {
		tp := tunnel.Peer{Name: p.name, PublicKey: p.key, PersistentKeepalive: p.keepalive,
			AllowedIPs: append(append([]netip.Prefix{}, p.addrs...), p.routes...)}
		if p.endpoint != "" {
			ep, err := resolveEndpoint(ctx, p.endpoint)
			if err != nil {
				d.log.Warn("peer endpoint does not resolve; waiting for the peer to call", "peer", p.name, "endpoint", p.endpoint, "err", err)
			}
			tp.Endpoint = ep
		}
		s.Peers = append(s.Peers, tp)
	}
	return s
}

func resolveEndpoint(ctx context.Context, hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	p, err := netip.ParseAddrPort(net.JoinHostPort(addrs[0].Unmap().String(), port))
	return p, err
}
