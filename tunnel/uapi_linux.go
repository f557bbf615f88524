package tunnel

import (
	"fmt"
	"log/slog"
	"net"
	"sync"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
)

// uapiServer serves wireguard-go's UAPI socket, /var/run/wireguard/<dev>.sock,
// which wg(8) and wgctrl talk to. The path is the same in every network
// namespace (it is a file): two devices with one name in two namespaces of
// one mount namespace collide there.
type uapiServer struct {
	l   net.Listener
	dev *device.Device
	log *slog.Logger

	done chan struct{} // closed when serve has returned

	mu      sync.Mutex
	conns   map[net.Conn]bool // open client connections
	closing bool
	wg      sync.WaitGroup // one per connection handler
}

// listenUAPI creates the socket (replacing a stale one; failing if another
// process serves it) and starts serving it.
func listenUAPI(name string, dev *device.Device, log *slog.Logger) (*uapiServer, error) {
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		return nil, fmt.Errorf("open uapi socket: %w", err)
	}
	l, err := ipc.UAPIListen(name, f)
	f.Close() // UAPIListen holds its own copy
	if err != nil {
		return nil, fmt.Errorf("listen on uapi socket: %w", err)
	}
	s := &uapiServer{l: l, dev: dev, log: log, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	go s.serve()
	return s, nil
}

// serve accepts until both of ipc.UAPIListener's goroutines (the accept
// loop and the socket file watcher) have reported their one error, so both
// have ended when serve returns, and a connection still queued by the
// accept loop (which would block it forever) is drained and closed.
func (s *uapiServer) serve() {
	defer close(s.done)
	for errs := 0; errs < 2; {
		c, err := s.l.Accept()
		if err != nil {
			errs++
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if !closing {
				s.log.Warn("uapi socket: stopped serving one of its watchers", "err", err)
			}
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.dev.IpcHandle(c) // closes c
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// close removes the socket file, ends open connections and waits for every
// goroutine.
func (s *uapiServer) close() error {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.l.Close()
	<-s.done
	s.wg.Wait()
	return err
}
