package emulator

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The egress hook: a clsact qdisc on the interface with one u32 match-all
// filter whose mirred action redirects every frame to the TAP. Equivalent to
//
//	tc qdisc add dev IFACE clsact
//	tc filter add dev IFACE egress protocol all u32 match u32 0 0 action mirred egress redirect dev TAP

func clsact(ifindex int) *netlink.Clsact {
	return &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: ifindex,
		Handle:    netlink.MakeHandle(0xffff, 0),
		Parent:    netlink.HANDLE_CLSACT,
	}}
}

// installHook redirects the egress of ifindex to tapIndex, replacing any
// clsact qdisc (and its filters) left on the interface.
func installHook(h *netlink.Handle, ifindex, tapIndex int) error {
	if err := removeHook(h, ifindex); err != nil {
		return err
	}
	if err := h.QdiscAdd(clsact(ifindex)); err != nil {
		return fmt.Errorf("emulator: add clsact qdisc: %w", err)
	}
	filter := &netlink.U32{ // no selector: netlink builds "match u32 0 0"
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    netlink.HANDLE_MIN_EGRESS,
			Priority:  1,
			Protocol:  unix.ETH_P_ALL,
		},
		Actions: []netlink.Action{netlink.NewMirredAction(tapIndex)},
	}
	if err := h.FilterAdd(filter); err != nil {
		return fmt.Errorf("emulator: add egress redirect filter: %w", err)
	}
	return nil
}

// removeHook deletes the clsact qdisc of ifindex, and its filters with it;
// it is not an error if there is none.
func removeHook(h *netlink.Handle, ifindex int) error {
	err := h.QdiscDel(clsact(ifindex))
	if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return fmt.Errorf("emulator: delete clsact qdisc: %w", err)
}

// hasClsact reports whether link has a clsact qdisc.
func hasClsact(h *netlink.Handle, link netlink.Link) (bool, error) {
	qdiscs, err := h.QdiscList(link)
	if err != nil {
		return false, fmt.Errorf("emulator: list qdiscs of %s: %w", link.Attrs().Name, err)
	}
	for _, q := range qdiscs {
		if q.Type() == "clsact" {
			return true, nil
		}
	}
	return false, nil
}
