package tunnel

import (
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// RouteProtocol marks the kernel routes this package installs (rtm_protocol).
// 114 ('r') is not in iproute2's /etc/iproute2/rt_protos nor FRR's list
// (186-198). Routes with another protocol are never touched: `ip route show
// proto 114` lists exactly roam's tunnel routes.
const RouteProtocol = 114

// wgAPI is the part of wgctrl the device uses: *wgctrl.Client (kernel
// devices through genetlink, userspace ones through their UAPI socket), or
// an in-memory fake in tests.
type wgAPI interface {
	Device(name string) (*wgtypes.Device, error)
	ConfigureDevice(name string, cfg wgtypes.Config) error
	Close() error
}

// linkState is what the device reads of its link.
type linkState struct {
	MTU int
	Up  bool
}

// linkAPI is the link, address and route operations on the device's own
// link, in the device's network namespace: netlink, or a fake in tests.
// Missing links are reported as errors wrapping os.ErrNotExist.
type linkAPI interface {
	Link(name string) (linkState, error)
	SetMTU(name string, mtu int) error
	SetUp(name string) error
	DeleteLink(name string) error
	// Addrs lists every address on the link.
	Addrs(name string) ([]netip.Prefix, error)
	AddAddr(name string, p netip.Prefix) error
	DelAddr(name string, p netip.Prefix) error
	// Routes lists the routes via the link with RouteProtocol in the
	// device's table (Config.Table).
	Routes(name string) ([]netip.Prefix, error)
	// AddRoute adds a route to p via the link with RouteProtocol in the
	// device's table.
	AddRoute(name string, p netip.Prefix) error
	DelRoute(name string, p netip.Prefix) error
	Close() error
}

// engine is a WireGuard implementation running in this process
// (wireguard-go with its UAPI server); kernel devices have none.
type engine interface {
	// Up brings the WireGuard device up (opens its UDP sockets) now rather
	// than when it notices the link went up.
	Up() error
	// Close stops it and removes its TUN link and UAPI socket.
	Close() error
}
