package tunnel

import (
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/tun"
)

// netnsRunner runs functions in one network namespace. A Device keeps the
// namespace it was opened in: wireguard-go opens UDP sockets and queries
// the TUN's MTU by name from its own goroutines, on threads that may be in
// another namespace (in tests, the root one).
type netnsRunner struct {
	mu sync.Mutex     // close may come while wireguard-go still calls run
	ns netns.NsHandle // guarded by mu; closed after close
}

// currentNetns returns a runner for the calling thread's namespace.
func currentNetns() (*netnsRunner, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("get network namespace: %w", err)
	}
	return &netnsRunner{ns: ns}, nil
}

// run calls fn on a fresh OS thread moved into the namespace. The thread is
// never unlocked: when the goroutine ends, the Go runtime ends the thread
// with it, so no other goroutine ever runs in a namespace it did not expect.
// Sockets and file descriptors fn creates stay in the namespace.
func (r *netnsRunner) run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		r.mu.Lock()
		var err error
		if r.ns.IsOpen() {
			err = netns.Set(r.ns)
		} else {
			err = net.ErrClosed
		}
		r.mu.Unlock()
		if err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func (r *netnsRunner) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ns.Close()
}

// netnsTUN is a TUN device whose MTU is read in its own namespace
// (tun.NativeTun asks by interface name on the calling thread).
type netnsTUN struct {
	tun.Device
	ns *netnsRunner
}

func (t *netnsTUN) MTU() (int, error) {
	var mtu int
	err := t.ns.run(func() error {
		var err error
		mtu, err = t.Device.MTU()
		return err
	})
	return mtu, err
}
