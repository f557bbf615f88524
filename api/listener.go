package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of the HTTP servers. Clients are local tools and scrapers; no
// request needs long.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
)

// listener is the listen-and-serve part that Server and Metrics share.
type listener struct {
	name    string // what is served, for errors: "REST API", "metrics"
	addr    string // configured listen address
	handler http.Handler
	log     *slog.Logger

	// mu guards the fields below it.
	mu      sync.Mutex
	ln      net.Listener // bound socket; nil before listen
	started bool         // Run was called; it owns ln
}

// listen binds the socket unless that is done already.
func (l *listener) listen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return fmt.Errorf("api: %s: Listen after Run", l.name)
	}
	return l.bindLocked()
}

func (l *listener) bindLocked() error {
	if l.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return fmt.Errorf("api: %s: %w", l.name, err)
	}
	l.ln = ln
	return nil
}

// boundAddr is the address of the bound socket, "" before listen.
func (l *listener) boundAddr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// run binds the socket if needed and serves until ctx is done, then shuts
// down gracefully. It returns once every connection has been closed; nil on
// cancellation.
func (l *listener) run(ctx context.Context) error {
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		return fmt.Errorf("api: %s: Run called twice", l.name)
	}
	l.started = true
	err := l.bindLocked()
	ln := l.ln
	l.mu.Unlock()
	if err != nil {
		return err
	}

	// conns counts open connections, so run can wait for their goroutines.
	var conns sync.WaitGroup
	srv := &http.Server{
		Handler:           l.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelWarn),
		// Requests see ctx: a cancelled Run cancels slow Source calls.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				conns.Add(1)
			case http.StateHijacked, http.StateClosed:
				conns.Done()
			}
		},
	}
	l.log.Info("serving", "addr", ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
		err = fmt.Errorf("api: %s: serve: %w", l.name, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			l.log.Warn("graceful shutdown did not finish; closing connections", "err", serr)
			srv.Close()
		}
		cancel()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = fmt.Errorf("api: %s: serve: %w", l.name, serr)
		}
	}
	if err != nil {
		srv.Close()
	}
	conns.Wait()
	l.log.Info("stopped", "addr", ln.Addr().String())
	return err
}

// maxHeaderBytes bounds request headers.
const maxHeaderBytes = 64 << 10
