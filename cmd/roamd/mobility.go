package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/roampb"
	"github.com/roamnet/roam/mobility"
	"github.com/roamnet/roam/tunnel"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// member is a node a hub lists in its directory.
type member struct {
	name  string
	key   wgtypes.Key
	addrs []netip.Prefix
}

// directPeer is the negotiation of the direct path to one member.
type directPeer struct {
	m      member
	dir    *tunnel.Direct
	down   bool      // its probes went down; cleared by the next pair selected (guarded by mob.mu)
	downAt time.Time // when
	cancel context.CancelFunc
	done   chan struct{}
}

// mob is a node's signalling, direct paths and handovers, or a hub's
// signalling relay, directory and STUN server.
type mob struct {
	d   *daemon
	log *slog.Logger
	hub bool

	sealer  *tunnel.Sealer
	sig     *tunnel.SignalConn
	stun    *tunnel.STUNConn  // nil on a kernel device
	ice     *tunnel.ICE       // nodes with mobility.direct
	watcher *mobility.Watcher // nodes with mobility.watch
	port    uint16            // the signal port

	// ctx is the life of the direct paths: Run cancels it and waits.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // a direct path changed: apply the peers

	// mu guards the fields below.
	mu      sync.Mutex
	members map[wgtypes.Key][]member // by the hub that listed them
	directs map[wgtypes.Key]*directPeer
	listed  bool                 // a directory arrived
	stopped bool                 // Run is ending: no new direct paths
	ho      handover             // the open handover of this node, if any
	peerEv  map[string]peerEvent // open events of peers that moved, by name
	pongs   chan wgtypes.Key
}

// startMobility builds the signalling and, on a node, ICE and the underlay
// watcher; on a hub, the relay and the STUN server. It returns what must
// run.
func (d *daemon) startMobility(cfg *Config) ([]func(context.Context) error, error) {
	m := &mob{
		d: d, log: d.log, hub: cfg.Role == "hub", port: uint16(cfg.Mobility.SignalPort),
		kick: make(chan struct{}, 1), members: map[wgtypes.Key][]member{},
		directs: map[wgtypes.Key]*directPeer{}, peerEv: map[string]peerEvent{}, pongs: make(chan wgtypes.Key, 16),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	self := overlayIPv4(cfg.addrs)
	if !self.IsValid() {
		d.log.Info("mobility: no IPv4 overlay address: no signalling")
		return nil, nil
	}
	m.sealer = tunnel.NewSealer(d.key, m.known)
	sc := tunnel.SignalConfig{
		Listen: netip.AddrPortFrom(self, m.port), Sealer: m.sealer, Handler: m.onSignal, Log: d.log,
		Hubs: m.hubAddrs,
	}
	bind := d.dev.Bind()
	if m.hub {
		sc.Relay = tunnel.NewRelay(d.key.PublicKey(), m.lookup, m.isHubAddr)
		if bind != nil {
			m.stun = tunnel.NewSTUNConn(bind, true)
		} else {
			d.log.Warn("hub: the kernel WireGuard device has no STUN on its port; nodes learn no server-reflexive candidates here")
		}
	}
	var err error
	if m.sig, err = tunnel.NewSignalConn(sc); err != nil {
		return nil, err
	}
	if !m.hub && *cfg.Mobility.Watch {
		m.watcher, err = mobility.NewWatcher(mobility.Config{
			Ignore: cfg.ignoredInterface, Targets: hubUnderlay(cfg), Log: d.log,
		})
		if err != nil {
			return nil, err
		}
	}
	if !m.hub && *cfg.Mobility.Direct {
		if bind == nil {
			return nil, fmt.Errorf("%w: mobility.direct needs the userspace tunnel (the device is %s)", errConfig, d.dev.Mode())
		}
		m.stun = tunnel.NewSTUNConn(bind, false)
		m.ice, err = tunnel.NewICE(tunnel.ICEConfig{Conn: m.stun, HostAddrs: m.hostAddrs, STUN: m.stunServers, Log: d.log})
		if err != nil {
			return nil, err
		}
	}
	d.mob = m
	runs := []func(context.Context) error{m.sig.Run, m.Run}
	if m.watcher != nil {
		runs = append(runs, m.watcher.Run)
	}
	return runs, nil
}

// Run keeps the directory fresh, applies direct path changes and hands
// over on underlay changes until ctx ends; then it stops every direct path.
func (m *mob) Run(ctx context.Context) error {
	defer func() {
		m.mu.Lock()
		m.stopped = true
		m.mu.Unlock()
		m.cancel()
		m.wg.Wait()
		if m.ice != nil {
			_ = m.ice.Close()
		} else if m.stun != nil {
			_ = m.stun.Close()
		}
	}()
	select {
	case <-m.sig.Ready():
	case <-ctx.Done():
		return nil
	}
	var events <-chan mobility.Event
	if m.watcher != nil {
		events = m.watcher.Events()
	}
	// A node asks its hubs for the directory at once, every 2 s until one
	// answers, then every minute.
	ask := time.NewTimer(0)
	defer ask.Stop()
	if m.hub {
		ask.Stop()
		m.peersChanged()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ask.C:
			m.requestDirectory()
			m.mu.Lock()
			listed := m.listed
			m.mu.Unlock()
			if listed {
				ask.Reset(time.Minute)
			} else {
				ask.Reset(2 * time.Second)
			}
		case <-m.kick:
			if err := m.d.applyPeers(ctx, nil); err != nil {
				m.log.Error("direct paths: peers not applied", "err", err)
			}
		case ev := <-events:
			m.underlayChanged(ev)
		case hub := <-m.pongs:
			m.hubAnswered(hub)
		}
	}
}

// known reports whether signals from key are accepted: a configured peer
// or a member of a hub's directory.
func (m *mob) known(key wgtypes.Key) bool {
	for _, p := range m.d.config().peers {
		if p.key == key {
			return true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.directs[key]
	return ok
}

// lookup is a hub's relay table: a configured peer's overlay IPv4.
func (m *mob) lookup(key wgtypes.Key) (netip.Addr, bool) {
	for _, p := range m.d.config().peers {
		if p.key == key {
			a := overlayIPv4(p.addrs)
			return a, a.IsValid()
		}
	}
	return netip.Addr{}, false
}

// isHubAddr tells whether an overlay address is another hub's.
func (m *mob) isHubAddr(a netip.Addr) bool {
	for _, p := range m.d.config().peers {
		if p.hub && overlayIPv4(p.addrs) == a {
			return true
		}
	}
	return false
}

// hubAddrs are the overlay signalling addresses of this node's hubs.
func (m *mob) hubAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range m.d.config().hubPeers() {
		out = append(out, netip.AddrPortFrom(overlayIPv4(p.addrs), m.port))
	}
	return out
}

// hubUnderlay are the underlay addresses of the hubs' endpoints: the
// watcher tracks the path to them.
func hubUnderlay(cfg *Config) []netip.Addr {
	var out []netip.Addr
	for _, p := range cfg.hubPeers() {
		if ap, err := netip.ParseAddrPort(p.endpoint); err == nil {
			out = append(out, ap.Addr().Unmap())
		}
	}
	return out
}

// stunServers are the hubs' WireGuard endpoints: they answer STUN there.
func (m *mob) stunServers() []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range m.d.config().hubPeers() {
		if ap, err := netip.ParseAddrPort(p.endpoint); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

// hostAddrs are this node's underlay addresses now: ICE's host candidates.
func (m *mob) hostAddrs() []netip.Addr {
	cfg := m.d.config()
	var out []netip.Addr
	if m.watcher != nil {
		for _, a := range m.watcher.Snapshot().Addrs {
			if cfg.underlayAddr(a.Prefix.Addr()) {
				out = append(out, a.Prefix.Addr())
			}
		}
		return out
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || cfg.ignoredInterface(ifc.Name) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && cfg.underlayAddr(p.Addr()) {
				out = append(out, p.Addr())
			}
		}
	}
	return out
}

// onSignal handles an opened signal; it runs on the signalling receive
// loop and never blocks.
func (m *mob) onSignal(from wgtypes.Key, s *roampb.Signal) {
	switch b := s.GetBody().(type) {
	case *roampb.Signal_DirectoryRequest:
		if m.hub {
			m.sendDirectory(from)
		}
	case *roampb.Signal_Ping:
		if m.hub {
			if a, ok := m.lookup(from); ok {
				m.send(netip.AddrPortFrom(a, m.port), from, &roampb.Signal{Body: &roampb.Signal_Ping{Ping: &roampb.Ping{}}})
			}
			return
		}
		if !m.isHubKey(from) {
			return
		}
		select {
		case m.pongs <- from:
		default:
		}
	case *roampb.Signal_Directory:
		if !m.hub && m.isHubKey(from) {
			m.setDirectory(from, b.Directory)
		}
	default:
		m.mu.Lock()
		dp := m.directs[from]
		m.mu.Unlock()
		if dp == nil {
			m.log.Debug("signal from a node without a direct path here: dropped", "from", from)
			return
		}
		dp.dir.Handle(s)
	}
}

func (m *mob) isHubKey(key wgtypes.Key) bool {
	for _, p := range m.d.config().hubPeers() {
		if p.key == key {
			return true
		}
	}
	return false
}

func (m *mob) send(to netip.AddrPort, key wgtypes.Key, s *roampb.Signal) {
	if err := m.sig.SendTo(to, key, s); err != nil {
		m.log.Debug("signal not sent", "to", to, "err", err)
	}
}

// requestDirectory asks every hub for its directory.
func (m *mob) requestDirectory() {
	for _, p := range m.d.config().hubPeers() {
		m.send(netip.AddrPortFrom(overlayIPv4(p.addrs), m.port), p.key,
			&roampb.Signal{Body: &roampb.Signal_DirectoryRequest{DirectoryRequest: &roampb.DirectoryRequest{}}})
	}
}

// directory is a hub's: this hub and every configured peer.
func (m *mob) directory() *roampb.Directory {
	cfg := m.d.config()
	pub := m.d.key.PublicKey()
	dir := &roampb.Directory{Members: []*roampb.Member{{Name: cfg.Node, PublicKey: pub[:], Hub: true, Addresses: prefixStrings(cfg.addrs)}}}
	for _, p := range cfg.peers {
		dir.Members = append(dir.Members, &roampb.Member{Name: p.name, PublicKey: p.key[:], Hub: p.hub, Addresses: prefixStrings(p.addrs)})
	}
	return dir
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// sendDirectory sends the hub's directory to one node.
func (m *mob) sendDirectory(to wgtypes.Key) {
	a, ok := m.lookup(to)
	if !ok {
		return
	}
	err := m.sig.SendTo(netip.AddrPortFrom(a, m.port), to, &roampb.Signal{Body: &roampb.Signal_Directory{Directory: m.directory()}})
	switch {
	case errors.Is(err, tunnel.ErrSignalTooLarge):
		// Nodes keep asking and find no direct paths: say why, loudly.
		m.log.Warn("hub: the directory does not fit in one signal; nodes get none (too many peers)", "peers", len(m.d.config().peers), "err", err)
	case err != nil:
		m.log.Debug("directory not sent", "to", to, "err", err)
	}
}

// peersChanged: on a hub, every node gets the new directory.
func (m *mob) peersChanged() {
	if !m.hub {
		return
	}
	for _, p := range m.d.config().peers {
		if !p.hub {
			m.sendDirectory(p.key)
		}
	}
}

// setDirectory takes a hub's directory: the nodes in it that are not
// configured peers get a direct path negotiation; those gone lose it.
func (m *mob) setDirectory(hub wgtypes.Key, dir *roampb.Directory) {
	cfg := m.d.config()
	pub := m.d.key.PublicKey()
	configured := map[wgtypes.Key]bool{}
	names := map[string]bool{}
	used := map[netip.Addr]bool{} // overlay addresses and routes taken
	for _, a := range cfg.addrs {
		used[a.Addr()] = true
	}
	for _, p := range cfg.peers {
		configured[p.key], names[p.name] = true, true
		for _, a := range slices.Concat(p.addrs, p.routes) {
			used[a.Addr()] = true
		}
	}
	var list []member
	for _, mb := range dir.GetMembers() {
		key, err := wgtypes.NewKey(mb.GetPublicKey())
		if err != nil || key == pub || configured[key] || mb.GetHub() {
			continue
		}
		addrs, err := overlayAddrs("directory member "+mb.GetName(), mb.GetAddresses())
		switch {
		case err != nil:
		case !overlayIPv4(addrs).IsValid():
			err = errors.New("no IPv4 overlay address")
		case !nodeNameRe.MatchString(mb.GetName()):
			err = errors.New("not a valid name")
		case names[mb.GetName()]:
			err = errors.New("the name is a configured peer's, or listed twice")
		case slices.ContainsFunc(addrs, func(a netip.Prefix) bool { return used[a.Addr()] }):
			err = errors.New("an overlay address is taken")
		}
		if err != nil {
			m.log.Info("directory: member left out", "hub", hub, "member", mb.GetName(), "err", err)
			continue
		}
		names[mb.GetName()] = true
		for _, a := range addrs {
			used[a.Addr()] = true
		}
		list = append(list, member{name: mb.GetName(), key: key, addrs: addrs})
	}
	m.mu.Lock()
	m.members[hub] = list
	m.listed = true
	m.mu.Unlock()
	m.syncDirects()
}

// syncDirects starts a direct path negotiation for every listed member
// and stops those of members no hub lists any more.
func (m *mob) syncDirects() {
	if m.ice == nil {
		return
	}
	cfg := m.d.config()
	self := m.d.key.PublicKey()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	// Hubs may list a node differently (each names its peers in its own
	// file): the first hub in the configuration wins, so that directories
	// arriving in any order give the same result.
	want := map[wgtypes.Key]member{}
	for _, h := range cfg.hubPeers() {
		for _, mb := range m.members[h.key] {
			if _, ok := want[mb.key]; !ok {
				want[mb.key] = mb
			}
		}
	}
	changed := false
	for key, dp := range m.directs {
		if mb, ok := want[key]; !ok || mb.name != dp.m.name || !slices.Equal(mb.addrs, dp.m.addrs) {
			dp.cancel()
			delete(m.directs, key)
			changed = true
			m.log.Info("direct path: stopped", "peer", dp.m.name)
		}
	}
	for key, mb := range want {
		if _, ok := m.directs[key]; ok || slices.ContainsFunc(cfg.peers, func(p peer) bool { return p.key == key }) {
			continue
		}
		log := m.log.With("peer", mb.name)
		dp := &directPeer{m: mb, done: make(chan struct{})}
		dir, err := tunnel.NewDirect(tunnel.DirectConfig{
			ICE: m.ice, Controlling: tunnel.Controlling(self, key), Log: log,
			Send:          func(s *roampb.Signal) error { return m.sig.Send(key, s) },
			OnPath:        func(st tunnel.PathStatus) { m.pathChanged(mb.name, st) },
			OnPeerRestart: func(reason string) { m.peerMoved(mb.name, reason) },
		})
		if err != nil {
			m.log.Error("direct path: not started", "peer", mb.name, "err", err)
			continue
		}
		dp.dir = dir
		var ctx context.Context
		ctx, dp.cancel = context.WithCancel(m.ctx)
		m.directs[key] = dp
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer close(dp.done)
			_ = dir.Run(ctx)
		}()
		changed = true
		m.log.Info("direct path: negotiating", "peer", mb.name, "controlling", tunnel.Controlling(self, key))
	}
	if changed {
		m.poke()
	}
}

func (m *mob) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// isDirect reports whether name is a peer whose tunnel ICE found.
func (m *mob) isDirect(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, dp := range m.directs {
		if dp.m.name == name {
			return true
		}
	}
	return false
}

// inUse reports whether the direct path carries traffic: a pair is
// selected and the probes over it have not gone down since. m.mu is held.
func (dp *directPeer) inUse(st tunnel.PathStatus) bool {
	return st.Pair.Remote.IsValid() && !dp.down
}

// pathChanged: a direct path connected, failed or moved (on its Direct's
// goroutine).
func (m *mob) pathChanged(name string, st tunnel.PathStatus) {
	switch st.State {
	case tunnel.PathConnected:
		m.log.Debug("direct path: connected", "peer", name, "pair", st.Pair.String())
	case tunnel.PathFailed:
		m.log.Info("direct path: failed: traffic goes through the hubs", "peer", name, "error", st.LastError, "retry", st.Retry.Format(time.TimeOnly))
	default:
		m.log.Info("direct path: "+st.State, "peer", name)
	}
	m.poke()
	if st.State == tunnel.PathConnected && !st.Selected.IsZero() {
		m.mu.Lock()
		for _, dp := range m.directs {
			if dp.m.name == name && st.Selected.After(dp.downAt) {
				dp.down = false
			}
		}
		m.mu.Unlock()
		m.markDirect(name, st.Selected)
		m.markPeer(name, st.Selected)
	}
}

// effective is cfg with the direct paths added as peers: a connected one
// as a full peer (endpoint from ICE, its overlay addresses, a BGP session
// and probes like a configured peer), the others as bare WireGuard peers,
// so that either end's first handshake is accepted.
func (d *daemon) effective(cfg *Config) *Config {
	m := d.mob
	if m == nil {
		return cfg
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.directs) == 0 {
		return cfg
	}
	out := *cfg
	out.peers = slices.Clone(cfg.peers)
	keys := make([]wgtypes.Key, 0, len(m.directs))
	for k := range m.directs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b wgtypes.Key) int { return slices.Compare(a[:], b[:]) })
	for _, k := range keys {
		dp := m.directs[k]
		p := peer{name: dp.m.name, key: k, probe: "off", direct: true}
		if st := dp.dir.Status(); dp.inUse(st) {
			p.endpoint = st.Pair.Remote.String()
			p.addrs = dp.m.addrs
			p.bgp = true
			if cfg.BGP != nil {
				p.asn = derivedASN(overlayIPv4(p.addrs))
			}
			if *cfg.Probe.Enabled {
				p.probe = cfg.Probe.Profile
			}
		}
		out.peers = append(out.peers, p)
	}
	return &out
}

var errPathsOff = fmt.Errorf("mobility is not running on this node (no IPv4 overlay address): %w", api.ErrDisabled)

// Paths implements api.Source: every peer's path.
func (d *daemon) Paths(ctx context.Context) (*roampb.ListPathsResponse, error) {
	if d.mob == nil {
		return nil, errPathsOff
	}
	return d.mob.paths(), nil
}

// paths is every peer's path: configured peers are static tunnels (hubs
// and peers with an endpoint in the file; ICE "off"), members of the hubs'
// directories have an ICE path, direct when it is connected and through a
// hub otherwise.
func (m *mob) paths() *roampb.ListPathsResponse {
	cfg := m.d.config()
	out := &roampb.ListPathsResponse{}
	live := map[wgtypes.Key]tunnel.PeerStatus{}
	if ps, err := m.d.dev.Peers(); err == nil {
		for _, p := range ps {
			live[p.PublicKey] = p
		}
	}
	via := ""
	if hubs := cfg.hubPeers(); len(hubs) > 0 {
		via = hubs[0].name
	}
	for _, p := range cfg.peers {
		pm := &roampb.Path{Name: p.name, PublicKey: p.key.String(), Type: "direct", IceState: "off"}
		if ep := live[p.key].Endpoint; ep.IsValid() {
			pm.Endpoint = ep.String()
		}
		out.Paths = append(out.Paths, pm)
	}
	m.mu.Lock()
	directs := make([]*directPeer, 0, len(m.directs))
	for _, dp := range m.directs {
		directs = append(directs, dp)
	}
	m.mu.Unlock()
	slices.SortFunc(directs, func(a, b *directPeer) int { return strings.Compare(a.m.name, b.m.name) })
	for _, dp := range directs {
		st := dp.dir.Status()
		pm := &roampb.Path{
			Name: dp.m.name, PublicKey: dp.m.key.String(), Type: "hub", Via: via, IceState: st.State,
			Since: timestamppb.New(st.Since), LastError: st.LastError,
		}
		if st.Sessions > 0 {
			pm.Restarts = st.Sessions - 1
		}
		m.mu.Lock()
		inUse := dp.inUse(st)
		m.mu.Unlock()
		if inUse {
			pm.Type, pm.Via = "direct", ""
			pm.LocalCandidate = st.Pair.LocalType + " " + st.Pair.Local.String()
			pm.RemoteCandidate = st.Pair.RemoteType + " " + st.Pair.Remote.String()
		}
		if ep := live[dp.m.key].Endpoint; ep.IsValid() {
			pm.Endpoint = ep.String()
		}
		out.Paths = append(out.Paths, pm)
	}
	return out
}
