package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Deploy creates the lab: namespaces, bridges, links, then runs every node's
// exec commands and starts its cmd. A lab already deployed is an error. When
// a step fails, what was created is destroyed again before Deploy returns.
func (l *Lab) Deploy(ctx context.Context) (err error) {
	if err := l.checkNotDeployed(); err != nil {
		return err
	}
	if err := os.MkdirAll(l.Root, 0o755); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	// The state directory is the lock: of two deploys, one creates it.
	if err := os.Mkdir(l.Dir(), 0o755); errors.Is(err, os.ErrExist) {
		return fmt.Errorf("testbed: lab %q is already deployed (state in %s); destroy it first", l.Topo.Name, l.Dir())
	} else if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	defer func() {
		if err != nil {
			l.Log.Warn("deploy failed, destroying what was created", "err", err)
			if derr := l.Destroy(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	if err := l.writeState(); err != nil {
		return err
	}
	for _, n := range l.Topo.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.createNode(n); err != nil {
			return err
		}
	}
	for _, link := range l.Topo.Links {
		if err := l.createLink(link); err != nil {
			return err
		}
	}
	for _, n := range l.Topo.Nodes {
		for _, line := range n.Exec {
			if err := l.runExec(ctx, n.Name, line); err != nil {
				return err
			}
		}
	}
	for _, n := range l.Topo.Nodes {
		if n.Cmd != "" {
			if err := l.startCmd(n); err != nil {
				return err
			}
		}
	}
	l.Log.Info("deployed", "nodes", len(l.Topo.Nodes), "links", len(l.Topo.Links))
	return nil
}

func (l *Lab) checkNotDeployed() error {
	if _, err := os.Stat(l.Dir()); err == nil {
		return fmt.Errorf("testbed: lab %q is already deployed (state in %s); destroy it first", l.Topo.Name, l.Dir())
	}
	for _, n := range l.Topo.Nodes {
		if name := NetnsName(l.Topo.Name, n.Name); netnsExists(name) {
			return fmt.Errorf("testbed: network namespace %s already exists and this lab did not create it (another lab, containerlab, or ip netns): remove it or rename lab %q", name, l.Topo.Name)
		}
	}
	return nil
}

func (l *Lab) writeState() error {
	data, err := os.ReadFile(l.Topo.File)
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	// The first line keeps the original location, so relative binds resolve
	// the same way when the lab is found again from its state.
	state := append([]byte("# roamlab-source: "+l.Topo.File+"\n"), data...)
	if err := os.WriteFile(l.stateFile(), state, 0o644); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	return nil
}

func (l *Lab) createNode(n *Node) error {
	if err := os.MkdirAll(l.NodeDir(n.Name), 0o755); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	name := NetnsName(l.Topo.Name, n.Name)
	if err := createNetns(name); err != nil {
		return err
	}
	if err := l.recordOwned(n); err != nil {
		return err
	}
	h, err := nsHandle(name)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("testbed: node %s: loopback up: %w", n.Name, err)
	}
	switch n.Kind {
	case KindBridge:
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Name}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("testbed: node %s: create bridge: %w", n.Name, err)
		}
		if err := h.LinkSetUp(br); err != nil {
			return fmt.Errorf("testbed: node %s: bridge up: %w", n.Name, err)
		}
	case KindLinux:
		if err := l.createMountns(n); err != nil {
			return err
		}
	}
	l.Log.Debug("node created", "node", n.Name, "kind", n.Kind, "netns", name)
	return nil
}

// createLink creates the veth pair inside the lab: the A end is created in A's
// namespace with its peer placed straight into B's, so nothing ever appears
// in the root namespace.
func (l *Lab) createLink(link Link) error {
	ha, err := nsHandle(NetnsName(l.Topo.Name, link.A.Node))
	if err != nil {
		return err
	}
	defer ha.Close()
	hb, err := nsHandle(NetnsName(l.Topo.Name, link.B.Node))
	if err != nil {
		return err
	}
	defer hb.Close()
	nsB, err := os.Open(l.NetnsPath(link.B.Node))
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	defer nsB.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: link.A.Iface, MTU: link.MTU},
		PeerName:      link.B.Iface,
		PeerNamespace: netlink.NsFd(int(nsB.Fd())),
	}
	if err := ha.LinkAdd(veth); err != nil {
		return fmt.Errorf("testbed: link %s-%s: %w", link.A, link.B, err)
	}
	for _, end := range []struct {
		h *netlink.Handle
		e Endpoint
	}{{ha, link.A}, {hb, link.B}} {
		if err := l.linkEndUp(end.h, end.e, link.MTU); err != nil {
			return fmt.Errorf("testbed: link %s-%s: %w", link.A, link.B, err)
		}
	}
	return nil
}

func (l *Lab) linkEndUp(h *netlink.Handle, e Endpoint, mtu int) error {
	ln, err := h.LinkByName(e.Iface)
	if err != nil {
		return fmt.Errorf("%s: %w", e, err)
	}
	if mtu != 0 {
		if err := h.LinkSetMTU(ln, mtu); err != nil {
			return fmt.Errorf("%s: mtu %d: %w", e, mtu, err)
		}
	}
	if l.Topo.Node(e.Node).Kind == KindBridge {
		br, err := h.LinkByName(e.Node)
		if err != nil {
			return fmt.Errorf("%s: bridge: %w", e, err)
		}
		if err := h.LinkSetMaster(ln, br); err != nil {
			return fmt.Errorf("%s: attach to bridge: %w", e, err)
		}
	}
	if err := h.LinkSetUp(ln); err != nil {
		return fmt.Errorf("%s: up: %w", e, err)
	}
	return nil
}

func (l *Lab) runExec(ctx context.Context, node, line string) error {
	cmd, err := l.CommandContext(ctx, node, "sh", "-c", line)
	if err != nil {
		return err
	}
	out, err := cmd.CombinedOutput()
	l.Log.Debug("exec", "node", node, "cmd", line, "output", strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("testbed: node %s: exec %q: %w: %s", node, line, err, strings.TrimSpace(string(out)))
	}
	return ctx.Err()
}

// startCmd starts a node's long-running cmd in its own session, output to the
// node's cmd.log. Destroy ends it with every other process of the node.
func (l *Lab) startCmd(n *Node) error {
	logf, err := os.OpenFile(l.CmdLog(n.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	defer logf.Close()
	cmd, err := l.Command(n.Name, "sh", "-c", n.Cmd)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testbed: node %s: start cmd %q: %w", n.Name, n.Cmd, err)
	}
	l.Log.Info("cmd started", "node", n.Name, "pid", cmd.Process.Pid, "log", l.CmdLog(n.Name))
	go func() { _ = cmd.Wait() }() // reap it if it ends while we still run
	return nil
}
