package labtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// InNetns runs fn on a fresh thread moved into the network namespace held by
// the file nsPath (e.g. /run/netns/clab-pair-a); sockets fn creates stay in
// that namespace. The thread is discarded if it cannot return.
func InNetns(nsPath string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return // the goroutine exits locked: its thread goes with it
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			done <- fmt.Errorf("network namespace %s: %w", nsPath, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- fmt.Errorf("enter %s: %w", nsPath, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(fnErr, err)
			return
		}
		runtime.UnlockOSThread()
		done <- fnErr
	}()
	return <-done
}

func inNetns(netnsName string, fn func() error) error {
	return InNetns(filepath.Join("/run/netns", netnsName), fn)
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
