package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Device is the node's WireGuard device. Its methods are safe for concurrent
// use; Apply, Peers and Close are serialized.
type Device struct {
	name string
	mode string
	mtu  int
	keep bool
	log  *slog.Logger

	wg   wgAPI   // WireGuard configuration (both modes)
	link linkAPI // link, addresses, routes
	eng  engine  // userspace WireGuard; nil for a kernel device
	bind *Bind   // the engine's Bind; nil for a kernel device
	now  func() time.Time

	mu     sync.Mutex
	last   *State // last State whose WireGuard part was applied; nil before
	closed bool
}

// Open creates the device described by cfg in the network namespace of the
// calling thread and returns it; d.Mode() tells which mode was chosen. A
// kernel device that exists already (kept by an earlier run) is adopted;
// any other link of that name, or a live UAPI socket of that name (another
// process, or a device of that name in another namespace), is an error.
// Nothing is configured until Apply.
//
// To open a device in another namespace, lock the OS thread, netns.Set,
// Open, and set it back: the device stays in that namespace, and its
// methods may then be called from any goroutine. Besides wireguard-go's own
// goroutines a userspace device runs one for its UAPI socket; Close waits
// for them. log may be nil.
func Open(cfg Config, log *slog.Logger) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "tunnel", "device", cfg.Name)
	return openOS(cfg, log)
}

// newDevice assembles a Device from its parts (used by openOS and by tests
// with fakes).
func newDevice(cfg Config, mode string, log *slog.Logger, wg wgAPI, link linkAPI, eng engine, bind *Bind) *Device {
	return &Device{
		name: cfg.Name, mode: mode, mtu: cfg.MTU, keep: cfg.Keep, log: log,
		wg: wg, link: link, eng: eng, bind: bind, now: time.Now,
	}
}

// Name is the interface name.
func (d *Device) Name() string { return d.name }

// Mode is the mode in use: "kernel" or "userspace".
func (d *Device) Mode() string { return d.mode }

// Bind is the UDP Bind of a userspace device, where STUN packets can be
// received and sent on WireGuard's port; nil for a kernel device.
func (d *Device) Bind() *Bind { return d.bind }

// Peers returns the live state of every peer on the device, named from the
// last applied State (a key not in it is named ""), sorted by name then key.
func (d *Device) Peers() ([]PeerStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("tunnel: peers of %s: %w", d.name, net.ErrClosed)
	}
	live, err := d.wg.Device(d.name)
	if err != nil {
		return nil, fmt.Errorf("tunnel: peers of %s: read device: %w", d.name, err)
	}
	names := map[wgtypes.Key]string{}
	if d.last != nil {
		for _, p := range d.last.Peers {
			names[p.PublicKey] = p.Name
		}
	}
	out := make([]PeerStatus, 0, len(live.Peers))
	for _, p := range live.Peers {
		hs := p.LastHandshakeTime
		if hs.Unix() <= 0 {
			hs = time.Time{}
		}
		out = append(out, PeerStatus{
			Name:                names[p.PublicKey],
			PublicKey:           p.PublicKey,
			Endpoint:            udpAddrPort(p.Endpoint),
			LastHandshake:       hs,
			RxBytes:             p.ReceiveBytes,
			TxBytes:             p.TransmitBytes,
			AllowedIPs:          livePrefixes(p.AllowedIPs),
			PersistentKeepalive: p.PersistentKeepaliveInterval,
		})
	}
	slices.SortFunc(out, func(a, b PeerStatus) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return compareKey(a.PublicKey, b.PublicKey)
	})
	return out, nil
}

// Close removes the device, its UAPI socket and its routes; with
// Config.Keep a kernel device stays as it is. Closing twice is a no-op.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	switch {
	case d.eng != nil:
		if d.keep {
			d.log.Info("keep is set, but a userspace device ends with its process: removing it")
		}
		if err := d.eng.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: close %s: %w", d.name, err))
		}
	case d.keep:
		d.log.Info("keeping the device, its addresses and routes")
	default:
		// Deleting the link takes its addresses and routes with it.
		if err := d.link.DeleteLink(d.name); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: close %s: delete link: %w", d.name, err))
		}
	}
	if err := d.wg.Close(); err != nil {
		errs = append(errs, fmt.Errorf("tunnel: close %s: wgctrl: %w", d.name, err))
	}
	if err := d.link.Close(); err != nil {
		errs = append(errs, fmt.Errorf("tunnel: close %s: netlink: %w", d.name, err))
	}
	if len(errs) == 0 {
		d.log.Info("device closed", "mode", d.mode)
	}
	return errors.Join(errs...)
}
