package emulator

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// packetSender transmits whole Ethernet frames on one interface, directly to
// its driver: PACKET_QDISC_BYPASS skips the qdisc layer and with it the
// clsact egress hook that redirected the frames to us, so nothing loops.
type packetSender struct {
	fd int
}

func openPacketSender(ifindex int) (*packetSender, error) {
	// Protocol 0: the socket receives nothing, it only sends.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("emulator: packet socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("emulator: packet socket qdisc bypass: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("emulator: bind packet socket to ifindex %d: %w", ifindex, err)
	}
	return &packetSender{fd: fd}, nil
}

func (p *packetSender) send(frame []byte) error {
	_, err := unix.Write(p.fd, frame)
	return err
}

func (p *packetSender) close() error { return unix.Close(p.fd) }
