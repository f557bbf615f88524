package testbed

import (
	"errors"
	"fmt"
	"net"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NodeInfo is what inspect shows of a node.
type NodeInfo struct {
	Lab        string            `json:"lab"`
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Image      string            `json:"image,omitempty"`
	Netns      string            `json:"netns"`
	State      string            `json:"state"` // running, or absent when its namespace is gone
	Processes  int               `json:"processes"`
	Labels     map[string]string `json:"labels,omitempty"`
	Interfaces []IfaceInfo       `json:"interfaces"`
}

// IfaceInfo is one interface of a node (loopback left out).
type IfaceInfo struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`    // operational state: up, down, ...
	Admin     bool     `json:"admin_up"` // set up by its node
	Carrier   bool     `json:"carrier"`  // has carrier (a veth: its peer is up)
	MAC       string   `json:"mac,omitempty"`
	MTU       int      `json:"mtu"`
	Addresses []string `json:"addresses"`
	Peer      string   `json:"peer,omitempty"` // the other end of the lab link, node:iface
	Cut       string   `json:"cut,omitempty"`  // carrier or drop while cut by "link set --down"
}

// Inspect reads the live state of every node of the lab.
func (l *Lab) Inspect() ([]NodeInfo, error) {
	owned, err := l.readOwned()
	if err != nil {
		return nil, err
	}
	var out []NodeInfo
	for _, n := range l.Topo.Nodes {
		ni := NodeInfo{Lab: l.Topo.Name, Name: n.Name, Kind: n.Kind, Image: n.Image,
			Netns: NetnsName(l.Topo.Name, n.Name), State: "absent", Labels: n.Labels, Interfaces: []IfaceInfo{}}
		mine := false
		for _, o := range owned {
			mine = mine || o.Node == n.Name && isOwned(o)
		}
		if mine {
			ni.State = "running"
			pids, err := nsProcs(l.NetnsPath(n.Name), "net")
			if err != nil {
				return nil, err
			}
			ni.Processes = len(pids)
			if ni.Interfaces, err = l.interfaces(n.Name); err != nil {
				return nil, err
			}
		}
		out = append(out, ni)
	}
	return out, nil
}

func (l *Lab) interfaces(node string) ([]IfaceInfo, error) {
	h, err := nsHandle(NetnsName(l.Topo.Name, node))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: list links: %w", node, err)
	}
	peers := map[string]string{}
	for _, ln := range l.Topo.Links {
		if ln.A.Node == node {
			peers[ln.A.Iface] = ln.B.String()
		}
		if ln.B.Node == node {
			peers[ln.B.Iface] = ln.A.String()
		}
	}
	out := []IfaceInfo{}
	for _, ln := range links {
		a := ln.Attrs()
		if a.Name == "lo" {
			continue
		}
		info := IfaceInfo{Name: a.Name, State: a.OperState.String(), MTU: a.MTU, Peer: peers[a.Name], Addresses: []string{},
			Admin: a.Flags&net.FlagUp != 0, Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0}
		if len(a.HardwareAddr) > 0 {
			info.MAC = a.HardwareAddr.String()
		}
		if c, err := l.readCut(node, a.Name); err == nil {
			info.Cut = string(c.Mode)
		} else if !errors.Is(err, errNotCut) {
			return nil, err
		}
		addrs, err := h.AddrList(ln, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("testbed: %s: addresses of %s: %w", node, a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() && ad.IP.To4() == nil {
				continue // every IPv6 interface has one; noise in a table
			}
			info.Addresses = append(info.Addresses, (&net.IPNet{IP: ad.IP, Mask: ad.Mask}).String())
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
