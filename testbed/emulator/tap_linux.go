package emulator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tapName is the TAP device that receives the egress of the interface with
// index ifindex ("emu" + at most 10 digits fits the 15-byte limit).
func tapName(ifindex int) string { return "emu" + strconv.Itoa(ifindex) }

// openTAP creates the TAP device name in the current network namespace, up,
// with mtu and without IPv6, so the kernel itself sends nothing on it. The
// device lives as long as the returned file is open. Reads return one
// Ethernet frame each.
func openTAP(h *netlink.Handle, name string, mtu int) (*os.File, netlink.Link, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("emulator: tap name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("emulator: create tap %s: %w", name, err)
	}
	// A non-blocking fd joins Go's poller, so Close interrupts a pending Read.
	f := os.NewFile(uintptr(fd), "tap "+name)
	link, err := h.LinkByName(name)
	if err == nil {
		err = disableIPv6(name)
	}
	if err == nil {
		err = h.LinkSetMTU(link, mtu)
	}
	if err == nil {
		// Frames wait in the TAP's queue until read: make it as deep as the
		// scheduler's, or a burst is dropped there, before the emulator sees it.
		err = h.LinkSetTxQLen(link, queueLimit)
	}
	if err == nil {
		err = h.LinkSetUp(link)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("emulator: set up tap %s: %w", name, err)
	}
	return f, link, nil
}

// tapDrops is how many frames the TAP dropped because its queue was full
// (the emulator did not read them in time); they count as queue drops.
func tapDrops(name string) uint64 {
	link, err := netlink.LinkByName(name)
	if err != nil || link.Attrs().Statistics == nil {
		return 0
	}
	return link.Attrs().Statistics.TxDropped
}

// disableIPv6 stops the kernel from sending router solicitations, DAD and
// MLD on the TAP, which would otherwise leave through the emulated interface.
func disableIPv6(name string) error {
	err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
	if errors.Is(err, fs.ErrNotExist) { // kernel without IPv6
		return nil
	}
	return err
}
