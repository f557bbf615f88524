package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl"
)

// openOS creates (or adopts) the device in the calling thread's network
// namespace. Everything is created on a thread in that namespace; the
// netlink and genetlink sockets keep it for later calls, and a userspace
// device keeps the namespace for wireguard-go's later socket opens.
func openOS(cfg Config, log *slog.Logger) (*Device, error) {
	ns, err := currentNetns()
	if err != nil {
		return nil, fmt.Errorf("tunnel: open %s: %w", cfg.Name, err)
	}
	var d *Device
	err = ns.run(func() error {
		var err error
		d, err = create(cfg, log, ns)
		return err
	})
	if err != nil {
		ns.close()
		return nil, err
	}
	if d.eng == nil {
		ns.close() // a kernel device needs no thread in the namespace later
	}
	log.Info("device open", "mode", d.mode, "mtu", cfg.MTU)
	return d, nil
}

// create runs in the device's namespace.
func create(cfg Config, log *slog.Logger, ns *netnsRunner) (*Device, error) {
	link, err := newRTNL(cfg.Table)
	if err != nil {
		return nil, fmt.Errorf("tunnel: open %s: %w", cfg.Name, err)
	}
	d, err := createLink(cfg, log, ns, link)
	if err != nil {
		link.Close()
		return nil, err
	}
	return d, nil
}

func createLink(cfg Config, log *slog.Logger, ns *netnsRunner, link *rtnl) (*Device, error) {
	if l, err := link.h.LinkByName(cfg.Name); err == nil {
		if l.Type() != "wireguard" || cfg.Mode == ModeUserspace {
			return nil, fmt.Errorf("tunnel: open %s: a %s link with that name exists already", cfg.Name, l.Type())
		}
		log.Info("adopting the existing kernel WireGuard device")
		return kernelDevice(cfg, log, link)
	}
	if cfg.Mode == ModeUserspace {
		return userspaceDevice(cfg, log, ns, link)
	}
	err := link.h.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: cfg.Name, MTU: cfg.MTU}})
	if err == nil {
		d, err := kernelDevice(cfg, log, link)
		if err != nil {
			if l, lerr := link.h.LinkByName(cfg.Name); lerr == nil {
				_ = link.h.LinkDel(l)
			}
		}
		return d, err
	}
	if cfg.Mode == ModeKernel {
		return nil, fmt.Errorf("tunnel: open %s: create kernel wireguard link: %w", cfg.Name, err)
	}
	log.Info("kernel WireGuard unavailable, using wireguard-go", "err", err)
	return userspaceDevice(cfg, log, ns, link)
}

// kernelDevice wraps an existing kernel WireGuard link. wgctrl is opened
// after the link exists: creating it may have loaded the module, and
// wgctrl looks for the genetlink family only when it starts.
func kernelDevice(cfg Config, log *slog.Logger, link *rtnl) (*Device, error) {
	wg, err := wgctrl.New()
	if err != nil {
		return nil, fmt.Errorf("tunnel: open %s: wgctrl: %w", cfg.Name, err)
	}
	if _, err := wg.Device(cfg.Name); err != nil {
		wg.Close()
		return nil, fmt.Errorf("tunnel: open %s: read kernel wireguard device: %w", cfg.Name, err)
	}
	return newDevice(cfg, ModeKernel, log, wg, link, nil, nil), nil
}

// userspaceDevice starts wireguard-go on a new TUN device with our Bind and
// serves its UAPI socket.
func userspaceDevice(cfg Config, log *slog.Logger, ns *netnsRunner, link *rtnl) (*Device, error) {
	t, err := tun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("tunnel: open %s: create tun: %w", cfg.Name, err)
	}
	bind := newBind(log, ns.run)
	dev := device.NewDevice(&netnsTUN{Device: t, ns: ns}, bind, wgLogger(log))
	uapi, err := listenUAPI(cfg.Name, dev, log)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("tunnel: open %s: %w", cfg.Name, err)
	}
	wg, err := wgctrl.New()
	if err != nil {
		_ = uapi.close()
		dev.Close()
		return nil, fmt.Errorf("tunnel: open %s: wgctrl: %w", cfg.Name, err)
	}
	return newDevice(cfg, ModeUserspace, log, wg, link, &userspace{dev: dev, uapi: uapi, ns: ns}, bind), nil
}

// userspace is wireguard-go with its UAPI server.
type userspace struct {
	dev  *device.Device
	uapi *uapiServer
	ns   *netnsRunner
}

func (u *userspace) Up() error { return u.dev.Up() }

func (u *userspace) Close() error {
	err := u.uapi.close()
	u.dev.Close() // closes the TUN, which removes the link and its routes
	return errors.Join(err, u.ns.close())
}

// wgLogger sends wireguard-go's log to slog: its verbose lines at Debug,
// its errors (often per packet while a path is down) at Warn.
func wgLogger(log *slog.Logger) *device.Logger {
	log = log.With("source", "wireguard-go")
	logf := func(level slog.Level) func(string, ...any) {
		return func(format string, args ...any) {
			if log.Enabled(context.Background(), level) {
				log.Log(context.Background(), level, fmt.Sprintf(format, args...))
			}
		}
	}
	return &device.Logger{Verbosef: logf(slog.LevelDebug), Errorf: logf(slog.LevelWarn)}
}
