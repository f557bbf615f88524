package tunnel

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// fakeWG is an in-memory wgctrl with WireGuard's configuration semantics:
// peers created on first mention, Remove, ReplaceAllowedIPs, and an allowed
// IP belonging to one peer only (adding it to a peer takes it from another).
type fakeWG struct {
	mu         sync.Mutex
	devs       map[string]*wgtypes.Device
	configures []wgtypes.Config // every ConfigureDevice call
	closed     bool
}

func newFakeWG(names ...string) *fakeWG {
	f := &fakeWG{devs: map[string]*wgtypes.Device{}}
	for _, n := range names {
		f.devs[n] = &wgtypes.Device{Name: n, Type: wgtypes.Userspace}
	}
	return f
}

func (f *fakeWG) Device(name string) (*wgtypes.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devs[name]
	if !ok {
		return nil, os.ErrNotExist
	}
	c := *d
	c.Peers = nil
	for _, p := range d.Peers {
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		if p.Endpoint != nil {
			e := *p.Endpoint
			p.Endpoint = &e
		}
		c.Peers = append(c.Peers, p)
	}
	return &c, nil
}

func (f *fakeWG) ConfigureDevice(name string, cfg wgtypes.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devs[name]
	if !ok {
		return os.ErrNotExist
	}
	f.configures = append(f.configures, cfg)
	if cfg.PrivateKey != nil {
		d.PrivateKey = *cfg.PrivateKey
		d.PublicKey = cfg.PrivateKey.PublicKey()
	}
	if cfg.ListenPort != nil {
		d.ListenPort = *cfg.ListenPort
	}
	if cfg.ReplacePeers {
		d.Peers = nil
	}
	for _, pc := range cfg.Peers {
		i := slices.IndexFunc(d.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == pc.PublicKey })
		if pc.Remove {
			if i >= 0 {
				d.Peers = slices.Delete(d.Peers, i, i+1)
			}
			continue
		}
		if i < 0 {
			if pc.UpdateOnly {
				continue
			}
			d.Peers = append(d.Peers, wgtypes.Peer{PublicKey: pc.PublicKey})
			i = len(d.Peers) - 1
		}
		p := &d.Peers[i]
		if pc.Endpoint != nil {
			e := *pc.Endpoint
			p.Endpoint = &e
		}
		if pc.PersistentKeepaliveInterval != nil {
			p.PersistentKeepaliveInterval = *pc.PersistentKeepaliveInterval
		}
		if pc.ReplaceAllowedIPs {
			p.AllowedIPs = nil
		}
		for _, a := range pc.AllowedIPs {
			for j := range d.Peers {
				d.Peers[j].AllowedIPs = slices.DeleteFunc(d.Peers[j].AllowedIPs, func(n net.IPNet) bool { return n.String() == a.String() })
			}
			p.AllowedIPs = append(p.AllowedIPs, a)
		}
	}
	return nil
}

func (f *fakeWG) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// roam moves a peer's live endpoint, as an authenticated packet from a new
// address does, and records a handshake at t.
func (f *fakeWG) roam(name string, key wgtypes.Key, to netip.AddrPort, t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.devs[name].Peers {
		if p.PublicKey == key {
			f.devs[name].Peers[i].Endpoint = net.UDPAddrFromAddrPort(to)
			f.devs[name].Peers[i].LastHandshakeTime = t
		}
	}
}

func (f *fakeWG) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.configures)
}

func (f *fakeWG) lastConfig() wgtypes.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.configures) == 0 {
		return wgtypes.Config{}
	}
	return f.configures[len(f.configures)-1]
}

// fakeLinks is an in-memory linkAPI. Like the kernel, it refuses a route
// via a link that is down.
type fakeLinks struct {
	mu      sync.Mutex
	links   map[string]*fakeLink
	changes []string // every call that changed something
	closed  bool
}

type fakeLink struct {
	mtu    int
	up     bool
	addrs  []netip.Prefix
	routes []netip.Prefix // roam routes
}

func newFakeLinks(names ...string) *fakeLinks {
	f := &fakeLinks{links: map[string]*fakeLink{}}
	for _, n := range names {
		f.links[n] = &fakeLink{mtu: 1500}
	}
	return f
}

func (f *fakeLinks) get(name string) (*fakeLink, error) {
	l, ok := f.links[name]
	if !ok {
		return nil, fmt.Errorf("link %s: %w", name, os.ErrNotExist)
	}
	return l, nil
}

func (f *fakeLinks) change(format string, args ...any) {
	f.changes = append(f.changes, fmt.Sprintf(format, args...))
}

func (f *fakeLinks) Link(name string) (linkState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return linkState{}, err
	}
	return linkState{MTU: l.mtu, Up: l.up}, nil
}

func (f *fakeLinks) SetMTU(name string, mtu int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	l.mtu = mtu
	f.change("mtu %s %d", name, mtu)
	return nil
}

func (f *fakeLinks) SetUp(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	l.up = true
	f.change("up %s", name)
	return nil
}

func (f *fakeLinks) DeleteLink(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(name); err != nil {
		return err
	}
	delete(f.links, name)
	f.change("delete %s", name)
	return nil
}

func (f *fakeLinks) Addrs(name string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.addrs), nil
}

func (f *fakeLinks) AddAddr(name string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	if slices.Contains(l.addrs, p) {
		return fmt.Errorf("address %s: file exists", p)
	}
	l.addrs = append(l.addrs, p)
	f.change("addr add %s %s", name, p)
	return nil
}

func (f *fakeLinks) DelAddr(name string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	i := slices.Index(l.addrs, p)
	if i < 0 {
		return fmt.Errorf("address %s: cannot assign requested address", p)
	}
	l.addrs = slices.Delete(l.addrs, i, i+1)
	f.change("addr del %s %s", name, p)
	return nil
}

func (f *fakeLinks) Routes(name string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return nil, err
	}
	return sortedPrefixes(slices.Clone(l.routes)), nil
}

func (f *fakeLinks) AddRoute(name string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	if !l.up {
		return fmt.Errorf("route %s: network is down", p)
	}
	if slices.Contains(l.routes, p) {
		return fmt.Errorf("route %s: file exists", p)
	}
	l.routes = append(l.routes, p)
	f.change("route add %s %s", name, p)
	return nil
}

func (f *fakeLinks) DelRoute(name string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	i := slices.Index(l.routes, p)
	if i < 0 {
		return fmt.Errorf("route %s: no such process", p)
	}
	l.routes = slices.Delete(l.routes, i, i+1)
	f.change("route del %s %s", name, p)
	return nil
}

func (f *fakeLinks) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeLinks) changeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.changes)
}

// fakeEngine stands for wireguard-go.
type fakeEngine struct {
	ups    int
	closed bool
}

func (e *fakeEngine) Up() error    { e.ups++; return nil }
func (e *fakeEngine) Close() error { e.closed = true; return nil }

// fakeDevice is a Device named dev over fakes, with a clock the test sets.
type fakeDevice struct {
	*Device
	wg    *fakeWG
	links *fakeLinks
	eng   *fakeEngine
	clock *time.Time
}

func newFakeDevice(cfg Config, userspace bool) fakeDevice {
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	f := fakeDevice{wg: newFakeWG(cfg.Name), links: newFakeLinks(cfg.Name)}
	mode := ModeKernel
	var eng engine
	if userspace {
		mode = ModeUserspace
		f.eng = &fakeEngine{}
		eng = f.eng
	}
	f.Device = newDevice(cfg, mode, slog.New(slog.DiscardHandler), f.wg, f.links, eng, nil)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.clock = &now
	f.Device.now = func() time.Time { return *f.clock }
	return f
}
