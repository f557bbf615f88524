package main

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
)

// MobilityConfig is how a node follows its underlay and finds direct paths.
type MobilityConfig struct {
	// Direct: ICE direct paths to the other nodes the hubs list (their
	// tunnels then carry their own BGP sessions and probes); default true
	// on a node with a hub peer. Needs the userspace tunnel (ICE shares
	// WireGuard's socket).
	Direct *bool `yaml:"direct"`
	// Watch: follow the underlay (addresses, links, routes) through
	// netlink and hand over in place when it changes; default true.
	Watch *bool `yaml:"watch"`
	// SignalPort is the UDP port of the signalling on the overlay
	// addresses (nodes and hubs alike); default 7471.
	SignalPort int `yaml:"signal_port"`
	// IgnoreInterfaces are interface name patterns (path.Match globs) that
	// are not underlay, besides the WireGuard device, lo and
	// defaultIgnored; addresses inside this node's own BGP prefixes are
	// never underlay either (pods).
	IgnoreInterfaces []string `yaml:"ignore_interfaces"`
}

// defaultIgnored are the interfaces of container runtimes and CNIs: never
// an uplink.
var defaultIgnored = []string{"lo", "cni*", "cali*", "cilium_*", "flannel*", "docker*", "veth*", "kube-*", "tunl*"}

func (c *Config) validateMobility() error {
	m := &c.Mobility
	hubs := 0
	for _, p := range c.peers {
		if p.hub {
			hubs++
		}
	}
	if m.Direct == nil {
		on := c.Role == "node" && hubs > 0
		m.Direct = &on
	}
	if *m.Direct {
		if c.Role == "hub" {
			return errors.New("config: mobility.direct: a hub has no direct paths to find (its endpoint is stable); remove it or set it false")
		}
		if hubs == 0 {
			return errors.New("config: mobility.direct: true, but no peer has hub: true (direct paths are negotiated through a hub)")
		}
		if c.Tunnel.Mode == "kernel" {
			return errors.New("config: mobility.direct: needs tunnel.mode userspace or auto (ICE shares WireGuard's socket, which a kernel device does not give)")
		}
	}
	if m.Watch == nil {
		on := true
		m.Watch = &on
	}
	if m.SignalPort == 0 {
		m.SignalPort = 7471
	}
	if m.SignalPort < 1 || m.SignalPort > 65535 {
		return fmt.Errorf("config: mobility.signal_port: %d out of range 1..65535", m.SignalPort)
	}
	if c.Probe.Enabled != nil && *c.Probe.Enabled && m.SignalPort == c.Probe.Port {
		return fmt.Errorf("config: mobility.signal_port: %d is also probe.port", m.SignalPort)
	}
	for i, g := range m.IgnoreInterfaces {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return fmt.Errorf("config: mobility.ignore_interfaces[%d]: %q is not a valid pattern", i, g)
		}
	}
	for i, p := range c.peers {
		if p.hub && !overlayIPv4(p.addrs).IsValid() {
			return fmt.Errorf("config: peers[%d]: a hub needs an IPv4 overlay address (signalling goes to it)", i)
		}
	}
	return nil
}

// ignoredInterface reports whether the interface name is not underlay.
func (c *Config) ignoredInterface(name string) bool {
	if name == c.Tunnel.Device {
		return true
	}
	for _, g := range slices.Concat(defaultIgnored, c.Mobility.IgnoreInterfaces) {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// underlayAddr reports whether a is an address ICE may offer as a host
// candidate: not an overlay address, not inside this node's own prefixes
// (pods), not loopback or link-local.
func (c *Config) underlayAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() {
		return false
	}
	for _, p := range c.addrs {
		if p.Contains(a) {
			return false
		}
	}
	if c.BGP != nil {
		for _, p := range c.BGP.prefixes {
			if p.Contains(a) {
				return false
			}
		}
	}
	return true
}

// hubPeers are the peers marked hub.
func (c *Config) hubPeers() []peer {
	var out []peer
	for _, p := range c.peers {
		if p.hub {
			out = append(out, p)
		}
	}
	return out
}
