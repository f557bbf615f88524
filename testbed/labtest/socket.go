package labtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread moved into the named network namespace: a
// socket fn creates stays in that namespace.
func inNetns(netnsName string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromPath(filepath.Join("/run/netns", netnsName))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", netnsName, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter %s: %w", netnsName, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		panic("labtest: cannot return to the original network namespace: " + err.Error())
	}
	return ferr
}

// HTTPClient returns a client whose connections start inside a lab node's
// network namespace: http://127.0.0.1:7470 is that node's API.
func HTTPClient(netnsName string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		err = inNetns(netnsName, func() error {
			conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// ListenUDP opens a UDP socket inside a lab node's network namespace: the
// socket stays in that namespace, so the test can send and receive as the
// node would, with no tool inside the node. It is closed when the test ends.
func ListenUDP(t testing.TB, netnsName, addr string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	err := inNetns(netnsName, func() (err error) {
		c, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, netnsName, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}
