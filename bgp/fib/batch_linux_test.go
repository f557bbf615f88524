package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRouteMessage decodes the messages appendRouteMsg encodes with the
// standard library's netlink parser.
func TestRouteMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		table  int
		o      op
		typ    uint16
		flags  uint16
		rtm    [8]byte // family, dst_len, src_len, tos, table, protocol, scope, type
		attrs  string
		seqOff int
	}{
		{
			name:  "add IPv4 to main",
			table: 254,
			o:     op{Kind: opAdd, Route: kroute{Prefix: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("198.51.100.2")}},
			typ:   unix.RTM_NEWROUTE, flags: unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_EXCL | unix.NLM_F_ECHO,
			rtm:   [8]byte{unix.AF_INET, 24, 0, 0, 254, 114, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST},
			attrs: "dst=0a630000 gateway=c6336402 table=254",
		},
		{
			name:  "change IPv6 in a table above 255",
			table: 100000,
			o:     op{Kind: opChange, Route: kroute{Prefix: netip.MustParsePrefix("2001:db8:90::/48"), Gateway: netip.MustParseAddr("2001:db8:1::2")}},
			typ:   unix.RTM_NEWROUTE, flags: unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_REPLACE | unix.NLM_F_ECHO,
			rtm:   [8]byte{unix.AF_INET6, 48, 0, 0, unix.RT_TABLE_UNSPEC, 114, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST},
			attrs: "dst=20010db8009000000000000000000000 gateway=20010db8000100000000000000000002 table=100000",
		},
		{
			name:  "delete with the dumped metric and TOS",
			table: 1000,
			o: op{Kind: opDelete, Route: kroute{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("203.0.113.1"),
				Metric: 20, TOS: 4, Dev: "ul1", Unicast: true}},
			typ: unix.RTM_DELROUTE, flags: unix.NLM_F_REQUEST,
			rtm:   [8]byte{unix.AF_INET, 0, 0, 4, unix.RT_TABLE_UNSPEC, 114, unix.RT_SCOPE_NOWHERE, unix.RTN_UNSPEC},
			attrs: "dst=00000000 gateway=cb007101 table=1000 priority=20",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two messages in one buffer, as in a batch.
			b := appendRouteMsg(nil, 7, tc.table, tc.o)
			b = appendRouteMsg(b, 8, tc.table, tc.o)
			msgs, err := syscall.ParseNetlinkMessage(b)
			if err != nil || len(msgs) != 2 {
				t.Fatalf("parse: %d messages, %v", len(msgs), err)
			}
			for i, m := range msgs {
				if m.Header.Type != tc.typ || m.Header.Flags != tc.flags || m.Header.Seq != uint32(7+i) || m.Header.Pid != 0 {
					t.Errorf("header %+v", m.Header)
				}
				if [8]byte(m.Data[:8]) != tc.rtm {
					t.Errorf("rtmsg % x, want % x", m.Data[:8], tc.rtm[:])
				}
				attrs, err := syscall.ParseNetlinkRouteAttr(&m)
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				for _, a := range attrs {
					if got != "" {
						got += " "
					}
					switch a.Attr.Type {
					case unix.RTA_DST:
						got += fmt.Sprintf("dst=%x", a.Value)
					case unix.RTA_GATEWAY:
						got += fmt.Sprintf("gateway=%x", a.Value)
					case unix.RTA_TABLE:
						got += fmt.Sprintf("table=%d", binary.NativeEndian.Uint32(a.Value))
					case unix.RTA_PRIORITY:
						got += fmt.Sprintf("priority=%d", binary.NativeEndian.Uint32(a.Value))
					default:
						got += fmt.Sprintf("attr%d=%x", a.Attr.Type, a.Value)
					}
				}
				if got != tc.attrs {
					t.Errorf("attributes %s, want %s", got, tc.attrs)
				}
			}
		})
	}
}

// errorMsg is an NLMSG_ERROR reply as the kernel sends it with
// NETLINK_CAP_ACK (capped) and an extended-ack message, if msg is not empty.
func errorMsg(code int32, seq uint32, msg string) []byte {
	var data []byte
	data = binary.NativeEndian.AppendUint32(data, uint32(code))
	req := make([]byte, unix.NLMSG_HDRLEN)
	putHeader(req, 64, unix.RTM_NEWROUTE, 0, seq)
	data = append(data, req...)
	flags := uint16(unix.NLM_F_CAPPED)
	if msg != "" {
		flags |= unix.NLM_F_ACK_TLVS
		data = appendAttr(data, unix.NLMSGERR_ATTR_MSG, append([]byte(msg), 0))
	}
	b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(data))
	putHeader(b, uint32(unix.NLMSG_HDRLEN+len(data)), unix.NLMSG_ERROR, flags, seq)
	return append(b, data...)
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want string
		is   error
	}{
		{"ack", errorMsg(0, 1, ""), "<nil>", nil},
		{"errno", errorMsg(-int32(unix.EEXIST), 1, ""), "file exists", unix.EEXIST},
		{"with the kernel's text", errorMsg(-int32(unix.ENETUNREACH), 1, "Nexthop has invalid gateway"),
			"network is unreachable (Nexthop has invalid gateway)", unix.ENETUNREACH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := syscall.ParseNetlinkMessage(tc.b)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("parse: %v", err)
			}
			got := parseError(msgs[0])
			if fmt.Sprint(got) != tc.want {
				t.Errorf("parseError: %v, want %s", got, tc.want)
			}
			if tc.is != nil && !errors.Is(got, tc.is) {
				t.Errorf("%v is not %v", got, tc.is)
			}
		})
	}
}

// FuzzParseError: any reply is parsed without panicking, and an error code
// survives whatever follows it.
func FuzzParseError(f *testing.F) {
	f.Add(errorMsg(-int32(unix.ENETUNREACH), 1, "Nexthop has invalid gateway")[unix.NLMSG_HDRLEN:], uint16(unix.NLM_F_CAPPED|unix.NLM_F_ACK_TLVS))
	f.Add(errorMsg(0, 1, "")[unix.NLMSG_HDRLEN:], uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0}, uint16(unix.NLM_F_ACK_TLVS))
	f.Fuzz(func(t *testing.T, data []byte, flags uint16) {
		m := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.NLMSG_ERROR, Flags: flags}, Data: data}
		err := parseError(m)
		if len(data) < 4 {
			if err == nil {
				t.Fatal("short message parsed as an ack")
			}
			return
		}
		code := int32(binary.NativeEndian.Uint32(data))
		switch {
		case code == 0 && err != nil:
			t.Fatalf("ack parsed as %v", err)
		case code != 0 && !errors.Is(err, unix.Errno(-code)):
			t.Fatalf("code %d parsed as %v", code, err)
		}
	})
}
