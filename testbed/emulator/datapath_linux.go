package emulator

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
)

// datapath is the userspace hop of one interface in the current network
// namespace: egress redirected to a TAP, frames sent back out directly.
type datapath struct {
	h       *netlink.Handle
	ifindex int
	tap     *os.File // frames the interface would have sent
	tapName string
	tx      *packetSender
}

func openDatapath(iface string) (*datapath, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("emulator: netlink: %w", err)
	}
	link, err := h.LinkByName(iface)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("emulator: interface %s: %w", iface, err)
	}
	d := &datapath{h: h, ifindex: link.Attrs().Index, tapName: tapName(link.Attrs().Index)}
	tap, tapLink, err := openTAP(h, d.tapName, link.Attrs().MTU)
	if err != nil {
		h.Close()
		return nil, err
	}
	d.tap = tap
	if d.tx, err = openPacketSender(d.ifindex); err != nil {
		tap.Close()
		h.Close()
		return nil, err
	}
	if err := installHook(h, d.ifindex, tapLink.Attrs().Index); err != nil {
		_ = removeHook(h, d.ifindex)
		d.tx.close()
		tap.Close()
		h.Close()
		return nil, err
	}
	return d, nil
}

// unhook removes the redirect, so the interface sends directly again, and
// closes the TAP, which deletes it and ends pending reads.
func (d *datapath) unhook() error {
	return errors.Join(removeHook(d.h, d.ifindex), d.tap.Close())
}

// close releases the rest once nothing reads or sends any more.
func (d *datapath) close() error {
	err := d.tx.close()
	d.h.Close()
	return err
}
