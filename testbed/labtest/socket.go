package labtest

import (
	"net"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// ListenUDP opens a UDP socket inside a lab node's network namespace: the
// socket stays in that namespace, so the test can send and receive as the
// node would, with no tool inside the node. It is closed when the test ends.
func ListenUDP(t testing.TB, netnsName, addr string) *net.UDPConn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(filepath.Join("/run/netns", netnsName))
	if err != nil {
		t.Fatalf("network namespace %s: %v", netnsName, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatalf("enter %s: %v", netnsName, err)
	}
	c, lerr := net.ListenPacket("udp4", addr)
	if err := netns.Set(orig); err != nil {
		panic("labtest: cannot return to the original network namespace: " + err.Error())
	}
	if lerr != nil {
		t.Fatalf("listen %s in %s: %v", addr, netnsName, lerr)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}
