package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CutMode is how a cut link looks to its two ends.
type CutMode string

const (
	// CutCarrier takes the far end of the link down: the node named in the
	// cut loses carrier with its interface still up, as when a cable is
	// pulled or an access point goes away, and cannot undo it from inside.
	// The far end's addresses and routes come back on repair.
	CutCarrier CutMode = "carrier"
	// CutDrop keeps both ends up and silently drops every frame both ways,
	// like a failure somewhere along the path.
	CutDrop CutMode = "drop"
)

// ParseCutMode parses "carrier" or "drop".
func ParseCutMode(s string) (CutMode, error) {
	switch m := CutMode(s); m {
	case CutCarrier, CutDrop:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want carrier or drop", s)
}

var errNotCut = errors.New("not cut")

// cutState is what a cut saved to undo it.
type cutState struct {
	Mode   CutMode      `json:"mode"`
	Far    Endpoint     `json:"far"`              // the end taken down (carrier)
	Routes []savedRoute `json:"routes,omitempty"` // the far end's
	Addrs  []string     `json:"addrs,omitempty"`  // IPv6 addresses the kernel drops on down
}

type savedRoute struct {
	Dst      string `json:"dst"`
	Gw       string `json:"gw,omitempty"`
	Src      string `json:"src,omitempty"`
	Table    int    `json:"table"`
	Priority int    `json:"priority"`
	Protocol int    `json:"protocol"`
	Scope    int    `json:"scope"`
	Type     int    `json:"type"`
	Family   int    `json:"family"`
}

func (l *Lab) cutFile(node, iface string) string {
	return filepath.Join(l.NodeDir(node), "cut-"+iface+".json")
}

func (l *Lab) readCut(node, iface string) (cutState, error) {
	var c cutState
	data, err := os.ReadFile(l.cutFile(node, iface))
	if errors.Is(err, os.ErrNotExist) {
		return c, errNotCut
	}
	if err != nil {
		return c, fmt.Errorf("testbed: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("testbed: %s: %w", l.cutFile(node, iface), err)
	}
	return c, nil
}

// linkPeer returns the other end of the lab link on node:iface.
func (l *Lab) linkPeer(node, iface string) (Endpoint, error) {
	e := Endpoint{Node: node, Iface: iface}
	for _, ln := range l.Topo.Links {
		switch e {
		case ln.A:
			return ln.B, nil
		case ln.B:
			return ln.A, nil
		}
	}
	return Endpoint{}, fmt.Errorf("testbed: %s has no lab link on %q (links: %s)", node, iface, strings.Join(l.Topo.Interfaces(node), ", "))
}

// CheckInterface makes sure iface is a lab link of node and node is deployed,
// for commands that act on one.
func (l *Lab) CheckInterface(node, iface string) error {
	if _, err := l.linkPeer(node, iface); err != nil {
		return err
	}
	return l.checkOwned(node)
}

// Cut cuts the link at node:iface.
func (l *Lab) Cut(node, iface string, mode CutMode) (err error) {
	if mode != CutCarrier && mode != CutDrop {
		return fmt.Errorf("testbed: cut mode %q: want carrier or drop", mode)
	}
	far, err := l.linkPeer(node, iface)
	if err != nil {
		return err
	}
	for _, n := range []string{node, far.Node} {
		if err := l.checkOwned(n); err != nil {
			return err
		}
	}
	// The cut file, created exclusively, is also the lock against a second cut.
	f, err := os.OpenFile(l.cutFile(node, iface), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		c, _ := l.readCut(node, iface)
		return fmt.Errorf("testbed: %s:%s is already cut (%s)", node, iface, c.Mode)
	}
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	state := cutState{Mode: mode}
	switch mode {
	case CutCarrier:
		state.Far = far
		h, link, err := l.nodeLink(far.Node, far.Iface)
		if err != nil {
			return err
		}
		defer h.Close()
		if state.Routes, state.Addrs, err = saveLinkConfig(h, link); err != nil {
			return fmt.Errorf("testbed: %s: %w", far, err)
		}
		if err := h.LinkSetDown(link); err != nil {
			return fmt.Errorf("testbed: %s down: %w", far, err)
		}
	case CutDrop:
		h, link, err := l.nodeLink(node, iface)
		if err != nil {
			return err
		}
		h.Close()
		if err := l.nft(node, dropRules(link.Attrs().Index, iface)); err != nil {
			return err
		}
	}
	if err := json.NewEncoder(f).Encode(state); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	l.Log.Info("link cut", "node", node, "iface", iface, "mode", mode)
	return nil
}

// Repair undoes Cut: the link carries traffic again with the addresses and
// routes it had.
func (l *Lab) Repair(node, iface string) error {
	if err := l.CheckInterface(node, iface); err != nil {
		return err
	}
	state, err := l.readCut(node, iface)
	if errors.Is(err, errNotCut) {
		return fmt.Errorf("testbed: %s:%s is not cut", node, iface)
	}
	if err != nil {
		return err
	}
	switch state.Mode {
	case CutCarrier:
		h, link, err := l.nodeLink(state.Far.Node, state.Far.Iface)
		if err != nil {
			return err
		}
		defer h.Close()
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("testbed: %s up: %w", state.Far, err)
		}
		if err := restoreLinkConfig(h, link, state); err != nil {
			return fmt.Errorf("testbed: %s: %w", state.Far, err)
		}
	case CutDrop:
		h, link, err := l.nodeLink(node, iface)
		if err != nil {
			return err
		}
		h.Close()
		if err := l.nft(node, fmt.Sprintf("delete table netdev roamlab_cut_%d\n", link.Attrs().Index)); err != nil {
			return err
		}
	}
	if err := os.Remove(l.cutFile(node, iface)); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	l.Log.Info("link repaired", "node", node, "iface", iface, "mode", state.Mode)
	return nil
}

// dropRules drop every frame on the device both ways, at the netdev hooks:
// before any protocol, ARP included, sees it.
func dropRules(index int, iface string) string {
	return fmt.Sprintf(`table netdev roamlab_cut_%d {
	chain ingress { type filter hook ingress device %q priority -500; policy drop; }
	chain egress { type filter hook egress device %q priority -500; policy drop; }
}
`, index, iface, iface)
}

func (l *Lab) nft(node, script string) error {
	cmd, err := l.Command(node, "nft", "-f", "-")
	if err != nil {
		return err
	}
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: %s: nft: %w: %s", node, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// saveLinkConfig records what taking link down would lose: routes through it
// (not the kernel's own, which come back by themselves) and IPv6 addresses.
func saveLinkConfig(h *netlink.Handle, link netlink.Link) ([]savedRoute, []string, error) {
	filter := &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_UNSPEC}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, nil, fmt.Errorf("list routes: %w", err)
	}
	var saved []savedRoute
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL || r.Table == unix.RT_TABLE_LOCAL || r.Dst == nil && r.Gw == nil {
			continue
		}
		s := savedRoute{Table: r.Table, Priority: r.Priority, Protocol: int(r.Protocol), Scope: int(r.Scope), Type: r.Type, Family: r.Family}
		if r.Dst != nil {
			s.Dst = r.Dst.String()
		}
		if r.Gw != nil {
			s.Gw = r.Gw.String()
		}
		if r.Src != nil {
			s.Src = r.Src.String()
		}
		saved = append(saved, s)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return nil, nil, fmt.Errorf("list addresses: %w", err)
	}
	var a6 []string
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			a6 = append(a6, a.IPNet.String())
		}
	}
	return saved, a6, nil
}

func restoreLinkConfig(h *netlink.Handle, link netlink.Link, state cutState) error {
	var errs []error
	for _, s := range state.Addrs {
		a, err := netlink.ParseAddr(s)
		if err == nil {
			a.Flags = unix.IFA_F_NODAD // it was the node's already
			err = h.AddrReplace(link, a)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore address %s: %w", s, err))
		}
	}
	for _, s := range state.Routes {
		r := netlink.Route{LinkIndex: link.Attrs().Index, Table: s.Table, Priority: s.Priority,
			Protocol: netlink.RouteProtocol(s.Protocol), Scope: netlink.Scope(s.Scope), Type: s.Type, Family: s.Family}
		if s.Dst != "" {
			_, dst, err := net.ParseCIDR(s.Dst)
			if err != nil {
				errs = append(errs, fmt.Errorf("restore route %s: %w", s.Dst, err))
				continue
			}
			r.Dst = dst
		}
		r.Gw, r.Src = net.ParseIP(s.Gw), net.ParseIP(s.Src)
		if err := h.RouteReplace(&r); err != nil {
			errs = append(errs, fmt.Errorf("restore route %s via %s: %w", s.Dst, s.Gw, err))
		}
	}
	return errors.Join(errs...)
}

// nodeLink opens a netlink handle in node's namespace and finds iface there.
// The caller closes the handle.
func (l *Lab) nodeLink(node, iface string) (*netlink.Handle, netlink.Link, error) {
	h, err := nsHandle(NetnsName(l.Topo.Name, node))
	if err != nil {
		return nil, nil, err
	}
	link, err := h.LinkByName(iface)
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("testbed: %s:%s: %w", node, iface, err)
	}
	return h, link, nil
}
