package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// batchSize is how many route messages one sendmsg carries. The kernel
// handles them one after the other before sendmsg returns and answers only
// those that fail (and echoes each route it adds or replaces, so that fib
// learns its device), so a batch costs one sendmsg and a few recvmsg. The
// receive buffer holds an error and an echo for every message of a batch
// (see newWriter).
var batchSize = 256

// writer sends route changes over its own rtnetlink socket, a batch per
// system call. Not safe for concurrent use (the FIB's mutex serialises it).
type writer struct {
	fd   int
	seq  uint32
	sbuf []byte
	rbuf []byte
}

// newWriter opens a socket in the calling thread's network namespace.
func newWriter() (*writer, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	w := &writer{fd: fd, rbuf: make([]byte, 1<<16)}
	if err := w.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return w, nil
}

func (w *writer) setup() error {
	if err := unix.Bind(w.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink socket: %w", err)
	}
	// Errors without the request echoed (small), with the kernel's text.
	_ = unix.SetsockoptInt(w.fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(w.fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	// Room for an error and an echo for every message of a batch (about
	// 1 KiB of buffer each): forced past rmem_max with CAP_NET_ADMIN, which
	// writing routes needs anyway; an overrun is still handled.
	const rcvbuf = 1 << 20
	if unix.SetsockoptInt(w.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		_ = unix.SetsockoptInt(w.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	// The kernel answers a batch before sendmsg returns; the timeout only
	// bounds a wait that would otherwise be a bug.
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	return unix.SetsockoptTimeval(w.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
}

func (w *writer) Close() error { return unix.Close(w.fd) }

// apply carries out ops in table, batchSize at a time, and returns each
// op's error and, for a route added or replaced, the index of the device
// the kernel chose (0 if its echo was lost).
func (w *writer) apply(table int, ops []op) ([]error, []int) {
	errs, oifs := make([]error, len(ops)), make([]int, len(ops))
	for start := 0; start < len(ops); start += batchSize {
		end := min(start+batchSize, len(ops))
		w.batch(table, ops[start:end], &replies{errs: errs[start:end], oifs: oifs[start:end]})
	}
	return errs, oifs
}

// replies are the kernel's answers to a batch: an error per op, and the
// device of each route it added or replaced (from its echo).
type replies struct {
	first uint32 // the sequence number of the batch's first op
	errs  []error
	oifs  []int
}

// errLost is the outcome of an op whose error report the kernel dropped.
var errLost = errors.New("outcome unknown: the kernel dropped netlink replies (receive buffer full)")

// batch sends ops without asking for acknowledgements, then a NLMSG_NOOP
// that asks for one: the kernel reports only failed ops, in order, and the
// NOOP's acknowledgement says it has handled them all.
func (w *writer) batch(table int, ops []op, r *replies) {
	r.first = w.seq + 1
	errs := r.errs
	b := w.sbuf[:0]
	for _, o := range ops {
		w.seq++
		b = appendRouteMsg(b, w.seq, table, o)
	}
	w.sbuf = b
	if err := w.send(b); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	lost, err := w.collect(r)
	if err != nil {
		err = fmt.Errorf("read netlink replies: %w", err)
	}
	for i := range errs {
		switch {
		case errs[i] != nil:
		case err != nil:
			errs[i] = err
		case lost:
			// No error arrived, but it may have been dropped.
			errs[i] = errLost
		}
	}
}

// collect reads the replies to a batch into r, until the kernel has
// acknowledged a NOOP sent after it. lost says the kernel dropped replies
// (the receive buffer was full).
func (w *writer) collect(r *replies) (lost bool, err error) {
	noop, err := w.sendNoop()
	if err != nil {
		return false, err
	}
	for {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			// Replies were dropped, maybe the NOOP's. The kernel answered
			// the whole batch before sendmsg returned, so once the queue
			// is empty, a new NOOP's acknowledgement has room.
			lost = true
			done, err := w.drain(noop, r)
			if done || err != nil {
				return lost, err
			}
			if noop, err = w.sendNoop(); err != nil {
				return lost, err
			}
			continue
		case err != nil:
			return lost, err
		}
		if w.handle(w.rbuf[:n], noop, r) {
			return lost, nil
		}
	}
}

// drain reads the replies queued now, without waiting; true if the NOOP's
// acknowledgement was among them.
func (w *writer) drain(noop uint32, r *replies) (bool, error) {
	for {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return false, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ENOBUFS):
			continue
		case err != nil:
			return false, err
		}
		if w.handle(w.rbuf[:n], noop, r) {
			return true, nil
		}
	}
}

// handle files the replies in b into r (an op's error, a route's echo),
// true for the NOOP's acknowledgement. Replies to earlier batches (after a
// failed read) are ignored.
func (w *writer) handle(b []byte, noop uint32, r *replies) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return false
	}
	done := false
	for _, m := range msgs {
		seq := m.Header.Seq
		ours := seq >= r.first && seq-r.first < uint32(len(r.errs))
		switch {
		case m.Header.Type == unix.NLMSG_ERROR && seq == noop:
			done = true
		case m.Header.Type == unix.NLMSG_ERROR && ours:
			r.errs[seq-r.first] = parseError(m)
		case m.Header.Type == unix.RTM_NEWROUTE && ours:
			r.oifs[seq-r.first] = routeOif(m.Data)
		}
	}
	return done
}

// routeOif is the output device (RTA_OIF) of a route message; 0 if none.
func routeOif(b []byte) int {
	if len(b) < unix.SizeofRtMsg {
		return 0
	}
	for attrs := b[unix.SizeofRtMsg:]; len(attrs) >= unix.SizeofRtAttr; {
		l := int(binary.NativeEndian.Uint16(attrs))
		if l < unix.SizeofRtAttr || l > len(attrs) {
			return 0
		}
		if binary.NativeEndian.Uint16(attrs[2:]) == unix.RTA_OIF && l == unix.SizeofRtAttr+4 {
			return int(binary.NativeEndian.Uint32(attrs[unix.SizeofRtAttr:]))
		}
		attrs = attrs[min(len(attrs), nlAlign(l)):]
	}
	return 0
}

func (w *writer) send(b []byte) error {
	for {
		err := unix.Sendto(w.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("send netlink batch: %w", err)
			}
			return nil
		}
	}
}

// sendNoop sends a NLMSG_NOOP asking for an acknowledgement and returns its
// sequence number.
func (w *writer) sendNoop() (uint32, error) {
	w.seq++
	var b [unix.NLMSG_HDRLEN]byte
	putHeader(b[:], unix.NLMSG_HDRLEN, unix.NLMSG_NOOP, unix.NLM_F_REQUEST|unix.NLM_F_ACK, w.seq)
	return w.seq, w.send(b[:])
}

// parseError returns the error an NLMSG_ERROR reports (nil for an
// acknowledgement), with the kernel's extended message if it gave one.
func parseError(m syscall.NetlinkMessage) error {
	if len(m.Data) < 4 {
		return errors.New("short netlink error message")
	}
	code := int32(binary.NativeEndian.Uint32(m.Data))
	if code == 0 {
		return nil
	}
	errno := unix.Errno(-code)
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 {
		return errno
	}
	// With NETLINK_CAP_ACK the request is not echoed: the attributes
	// follow the error code and the request's header.
	off := 4 + unix.NLMSG_HDRLEN
	if m.Header.Flags&unix.NLM_F_CAPPED == 0 && len(m.Data) >= off {
		off = 4 + int(binary.NativeEndian.Uint32(m.Data[4:]))
	}
	for off+unix.SizeofRtAttr <= len(m.Data) {
		l := int(binary.NativeEndian.Uint16(m.Data[off:]))
		typ := binary.NativeEndian.Uint16(m.Data[off+2:])
		if l < unix.SizeofRtAttr || off+l > len(m.Data) {
			break
		}
		if typ == unix.NLMSGERR_ATTR_MSG {
			msg := unix.ByteSliceToString(m.Data[off+unix.SizeofRtAttr : off+l])
			return &kernelError{errno: errno, msg: msg}
		}
		off += nlAlign(l)
	}
	return errno
}

// kernelError is an errno with the kernel's explanation (extended ack).
type kernelError struct {
	errno unix.Errno
	msg   string
}

func (e *kernelError) Error() string { return fmt.Sprintf("%v (%s)", e.errno, e.msg) }
func (e *kernelError) Unwrap() error { return e.errno }

// appendRouteMsg appends the RTM_NEWROUTE or RTM_DELROUTE message for o.
// Adds and changes name no device: the kernel chooses it from the gateway,
// as `ip route add P via G` does.
func appendRouteMsg(b []byte, seq uint32, table int, o op) []byte {
	kr := o.Route
	start := len(b)
	b = append(b, make([]byte, unix.NLMSG_HDRLEN+unix.SizeofRtMsg)...)
	typ := uint16(unix.RTM_NEWROUTE)
	flags := uint16(unix.NLM_F_REQUEST)
	scope, rtype := uint8(unix.RT_SCOPE_UNIVERSE), uint8(unix.RTN_UNICAST)
	switch o.Kind {
	case opAdd:
		flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL | unix.NLM_F_ECHO
	case opChange:
		flags |= unix.NLM_F_CREATE | unix.NLM_F_REPLACE | unix.NLM_F_ECHO
	case opDelete:
		typ = unix.RTM_DELROUTE
		scope, rtype = unix.RT_SCOPE_NOWHERE, unix.RTN_UNSPEC
	}
	family := uint8(unix.AF_INET6)
	if kr.Prefix.Addr().Is4() {
		family = unix.AF_INET
	}
	rtTable := uint8(unix.RT_TABLE_UNSPEC)
	if table < 256 {
		rtTable = uint8(table)
	}
	rtm := b[start+unix.NLMSG_HDRLEN:]
	rtm[0] = family
	rtm[1] = uint8(kr.Prefix.Bits())
	rtm[3] = uint8(kr.TOS)
	rtm[4] = rtTable
	rtm[5] = Protocol
	rtm[6] = scope
	rtm[7] = rtype
	b = appendAddrAttr(b, unix.RTA_DST, kr.Prefix.Addr())
	if kr.Gateway.IsValid() {
		b = appendAddrAttr(b, unix.RTA_GATEWAY, kr.Gateway)
	}
	b = appendU32Attr(b, unix.RTA_TABLE, uint32(table))
	if kr.Metric > 0 {
		b = appendU32Attr(b, unix.RTA_PRIORITY, uint32(kr.Metric))
	}
	putHeader(b[start:], uint32(len(b)-start), typ, flags, seq)
	return b
}

func putHeader(b []byte, length uint32, typ, flags uint16, seq uint32) {
	binary.NativeEndian.PutUint32(b[0:], length)
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[12:], 0) // to the kernel
}

func appendAddrAttr(b []byte, typ uint16, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return appendAttr(b, typ, v[:])
	}
	v := a.As16()
	return appendAttr(b, typ, v[:])
}

func appendU32Attr(b []byte, typ uint16, v uint32) []byte {
	var d [4]byte
	binary.NativeEndian.PutUint32(d[:], v)
	return appendAttr(b, typ, d[:])
}

// appendAttr appends a route attribute (struct rtattr and data, padded).
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	return append(b, make([]byte, nlAlign(l)-l)...)
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
