package main

import (
	"fmt"
	"net/netip"

	"github.com/roamnet/roam/probe"
)

// ProbeConfig is link probing: a STAMP reflector on this node's overlay
// address and probes inside the tunnel to every peer, whose results take
// down peers that stop answering and set the local-pref of the routes
// learned over each tunnel.
type ProbeConfig struct {
	Enabled *bool  `yaml:"enabled"` // default true
	Profile string `yaml:"profile"` // fast (100 ms), default (250 ms) or metered (2 s), for peers that name none
	Port    int    `yaml:"port"`    // UDP port of every node's reflector; default 862 (STAMP)
}

// validateProbe fills the probe defaults and each peer's profile.
func (c *Config) validateProbe() error {
	p := &c.Probe
	if p.Enabled == nil {
		on := true
		p.Enabled = &on
	}
	if p.Profile == "" {
		p.Profile = "default"
	}
	if _, err := probe.ProfileInterval(p.Profile); err != nil {
		return fmt.Errorf("config: probe.profile: %q: want fast, default or metered", p.Profile)
	}
	if p.Port == 0 {
		p.Port = probe.STAMPPort
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("config: probe.port: %d out of range 1..65535", p.Port)
	}
	for i, pc := range c.Peers {
		prof := pc.Probe
		switch {
		case prof == "":
			prof = p.Profile
		case prof == "off":
		default:
			if _, err := probe.ProfileInterval(prof); err != nil {
				return fmt.Errorf("config: peers[%d].probe: %q: want fast, default, metered or off", i, prof)
			}
		}
		if !*p.Enabled {
			prof = "off"
		}
		c.peers[i].probe = prof
	}
	return nil
}

// probeAddr is the overlay address probes go from and the reflector
// answers on: the IPv4 one if the node has one.
func probeAddr(addrs []netip.Prefix) netip.Addr {
	var out netip.Addr
	for _, a := range addrs {
		if a.Addr().Is4() {
			return a.Addr()
		}
		out = a.Addr()
	}
	return out
}

// probeTargets are the peers to probe: every peer whose profile is not off
// and that has an overlay address of the family this node probes from.
func probeTargets(c *Config) []probe.Target {
	fam4 := probeAddr(c.addrs).Is4()
	var out []probe.Target
	for _, p := range c.peers {
		if p.probe == "off" {
			continue
		}
		for _, a := range p.addrs {
			if a.Addr().Is4() != fam4 {
				continue
			}
			iv, _ := probe.ProfileInterval(p.probe)
			out = append(out, probe.Target{
				Name: p.name, Addr: netip.AddrPortFrom(a.Addr(), uint16(c.Probe.Port)),
				Profile: p.probe, Config: probe.Config{Interval: iv},
			})
			break
		}
	}
	return out
}
