// Helpers of the interop benchmark and tests: prefixes and paths for
// gobgpd, its gRPC API inside its node, and raw netlink route dumps.

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/roamnet/roam/testbed/labtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// ixPrefixes are n consecutive prefixes of first's length, from first on,
// all inside within.
func ixPrefixes(first netip.Prefix, n int, within netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, n)
	a := first.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	step := uint32(1) << (32 - first.Bits())
	for i := 0; i < n; i++ {
		x := v + uint32(i)*step
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}), first.Bits())
		if !within.Contains(p.Addr()) {
			panic(fmt.Sprintf("%d prefixes from %s do not fit in %s", n, first, within))
		}
		out = append(out, p)
	}
	return out
}

// ixPaths are GoBGP API paths announcing (or withdrawing) prefixes with
// nextHop, origin IGP.
func ixPaths(prefixes []netip.Prefix, nextHop string, withdraw bool) []*api.Path {
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	nh, _ := anypb.New(&api.NextHopAttribute{NextHop: nextHop})
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	out := make([]*api.Path, len(prefixes))
	for i, p := range prefixes {
		nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
		out[i] = &api.Path{Family: family, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}, IsWithdraw: withdraw}
	}
	return out
}

// ixGoBGPD is a gRPC client of gobgpd's API on 127.0.0.1:50051 inside
// the lab node whose network namespace is netnsName: its connection is made
// from inside that namespace.
func ixGoBGPD(tb testing.TB, netnsName string) api.GobgpApiClient {
	tb.Helper()
	dial := func(ctx context.Context, addr string) (conn net.Conn, err error) {
		err = labtest.InNetns(filepath.Join("/run/netns", netnsName), func() error {
			conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
			return err
		})
		return conn, err
	}
	cc, err := grpc.Dial("127.0.0.1:50051", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))
	if err != nil {
		tb.Fatalf("gobgpd gRPC in %s: %v", netnsName, err)
	}
	tb.Cleanup(func() { cc.Close() })
	return api.NewGobgpApiClient(cc)
}

// ixAddPaths sends paths to gobgpd's global RIB over one AddPathStream, batch
// paths per message.
func ixAddPaths(ctx context.Context, c api.GobgpApiClient, paths []*api.Path, batch int) error {
	stream, err := c.AddPathStream(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < len(paths); i += batch {
		if err := stream.Send(&api.AddPathStreamRequest{TableType: api.TableType_GLOBAL, Paths: paths[i:min(i+batch, len(paths))]}); err != nil {
			return err
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

// ixKernelRoutes calls fn for each IPv4 route of the main table with
// protocol proto whose destination lies inside within, from one netlink dump
// made inside the lab node's network namespace netnsName. It parses the raw
// messages itself: a parsed netlink.RouteList of 10 000 routes cost the
// benchmark ~18 ms of CPU per sample, competing with the daemons it measures.
func ixKernelRoutes(netnsName string, proto uint8, within netip.Prefix, fn func(dst netip.Prefix, gw netip.Addr)) error {
	var rib []byte
	err := labtest.InNetns(filepath.Join("/run/netns", netnsName), func() (err error) {
		rib, err = syscall.NetlinkRIB(syscall.RTM_GETROUTE, syscall.AF_INET)
		return err
	})
	if err != nil {
		return fmt.Errorf("route dump in %s: %w", netnsName, err)
	}
	for len(rib) >= syscall.NLMSG_HDRLEN {
		n := int(binary.NativeEndian.Uint32(rib[0:4]))
		typ := binary.NativeEndian.Uint16(rib[4:6])
		if n < syscall.NLMSG_HDRLEN || n > len(rib) {
			return fmt.Errorf("route dump in %s: bad message length %d", netnsName, n)
		}
		msg := rib[syscall.NLMSG_HDRLEN:n]
		rib = rib[min(len(rib), (n+syscall.NLMSG_ALIGNTO-1)&^(syscall.NLMSG_ALIGNTO-1)):]
		if typ == syscall.NLMSG_DONE {
			break
		}
		// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
		if typ != syscall.RTM_NEWROUTE || len(msg) < syscall.SizeofRtMsg {
			continue
		}
		dstLen, table, protocol := int(msg[1]), msg[4], msg[5]
		if protocol != proto {
			continue
		}
		var dst, gw netip.Addr
		attrs := msg[syscall.SizeofRtMsg:]
		for len(attrs) >= syscall.SizeofRtAttr {
			l := int(binary.NativeEndian.Uint16(attrs[0:2]))
			t := binary.NativeEndian.Uint16(attrs[2:4])
			if l < syscall.SizeofRtAttr || l > len(attrs) {
				break
			}
			v := attrs[syscall.SizeofRtAttr:l]
			switch {
			case t == syscall.RTA_DST && len(v) == 4:
				dst = netip.AddrFrom4([4]byte(v))
			case t == syscall.RTA_GATEWAY && len(v) == 4:
				gw = netip.AddrFrom4([4]byte(v))
			case t == syscall.RTA_TABLE && len(v) == 4:
				table = uint8(min(binary.NativeEndian.Uint32(v), 255))
			}
			attrs = attrs[min(len(attrs), (l+syscall.RTA_ALIGNTO-1)&^(syscall.RTA_ALIGNTO-1)):]
		}
		if table != syscall.RT_TABLE_MAIN || !dst.IsValid() {
			continue
		}
		if p := netip.PrefixFrom(dst, dstLen); p.Bits() >= within.Bits() && within.Contains(dst) {
			fn(p, gw)
		}
	}
	return nil
}

// ixCountRoutes is how many routes ixKernelRoutes finds.
func ixCountRoutes(netnsName string, proto uint8, within netip.Prefix) (int, error) {
	n := 0
	err := ixKernelRoutes(netnsName, proto, within, func(netip.Prefix, netip.Addr) { n++ })
	return n, err
}
