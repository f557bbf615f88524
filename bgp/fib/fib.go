package fib

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FIB is roam's share of one kernel routing table: the routes with Protocol
// via underlay gateways (see the package doc). Its methods may be called
// from several goroutines; they run one at a time.
type FIB struct {
	table   int
	exclude []string
	log     *slog.Logger
	now     func() time.Time

	mu     sync.Mutex
	k      kernel
	closed bool
}

// newFIB returns a FIB over k; cfg has been validated.
func newFIB(cfg Config, log *slog.Logger, k kernel) *FIB {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FIB{
		table:   cfg.Table,
		exclude: cfg.Exclude,
		log:     log.With("component", "fib"),
		now:     time.Now,
		k:       k,
	}
}

// ownedLocked dumps the table and returns the routes fib owns in it.
func (f *FIB) ownedLocked() ([]kroute, error) {
	if f.closed {
		return nil, net.ErrClosed
	}
	all, err := f.k.Routes(f.table)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, kr := range all {
		if owned(kr, f.exclude) {
			out = append(out, kr)
		}
	}
	return out, nil
}

// List returns the routes fib owns in its table, sorted: after a restart,
// what the previous run left.
func (f *FIB) List() ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	have, err := f.ownedLocked()
	if err != nil {
		return nil, fmt.Errorf("fib: list table %d: %w", f.table, err)
	}
	out := make([]Route, len(have))
	for i, kr := range have {
		out[i] = kr.route()
	}
	slices.SortFunc(out, compareRoute)
	return out, nil
}

// Result counts what a Sync changed in the kernel.
type Result struct {
	Added   int // routes to prefixes fib had no route to
	Changed int // routes replaced because the gateway changed
	Removed int // routes deleted
	Failed  int // wanted routes not installed, and routes not deleted (see the error)
}

// Sync makes the routes fib owns in its table exactly want, the whole
// desired set (nil removes them all). It dumps the table once and sends only
// the differences: calling it again with the same routes changes nothing. A
// changed gateway is replaced in one message, so traffic to the prefix never
// finds no route.
//
// Routes that fail do not stop the others. The error is then a *SyncError
// listing each as a *RouteError; a gateway no connected subnet holds wraps
// ErrUnreachable. A route fib cannot install leaves the kernel's route for
// its prefix, if any, as it was; the next Sync tries again.
func (f *FIB) Sync(want []Route) (Result, error) {
	start := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	have, err := f.ownedLocked()
	if err != nil {
		return Result{}, fmt.Errorf("fib: sync table %d: list routes: %w", f.table, err)
	}
	ops, refused := plan(have, want)
	var res Result
	var errs []*RouteError
	for _, e := range refused {
		errs = append(errs, e)
		res.Failed++
	}
	results := f.k.Apply(f.table, ops)
	debug := f.log.Enabled(context.Background(), slog.LevelDebug)
	for i, o := range ops {
		err := results[i]
		if o.Kind == opDelete && errors.Is(err, syscall.ESRCH) {
			// Someone deleted it since the dump: gone, as wanted.
			f.log.Debug("route gone before its delete", "route", o.Route.route(), "dev", o.Route.Dev)
			continue
		}
		if err != nil {
			errs = append(errs, &RouteError{Op: o.Kind.String(), Route: o.Route.route(), Err: f.explain(o, err)})
			res.Failed++
			continue
		}
		switch o.Kind {
		case opAdd:
			res.Added++
		case opChange:
			res.Changed++
		case opDelete:
			res.Removed++
		}
		if debug {
			f.logOp(o)
		}
	}
	if res != (Result{}) {
		f.log.Info("routes synced", "table", f.table, "wanted", len(want), "added", res.Added,
			"changed", res.Changed, "removed", res.Removed, "failed", res.Failed,
			"took", f.now().Sub(start).Round(time.Microsecond))
	}
	if len(errs) > 0 {
		return res, &SyncError{Table: f.table, Errors: errs}
	}
	return res, nil
}

// logOp logs a change made, one line per route (Debug: 10 000 at a time).
func (f *FIB) logOp(o op) {
	switch o.Kind {
	case opAdd:
		f.log.Debug("route added", "route", o.Route.route())
	case opChange:
		f.log.Debug("route changed", "prefix", o.Route.Prefix, "gateway", o.Old.Gateway.String()+" -> "+o.Route.Gateway.String())
	case opDelete:
		f.log.Debug("route removed", "route", o.Route.route(), "dev", o.Route.Dev, "metric", o.Route.Metric)
	}
}

// explain adds what a kernel error means for o.
func (f *FIB) explain(o op, err error) error {
	switch {
	case o.Kind != opDelete && (errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	case o.Kind == opAdd && errors.Is(err, syscall.EEXIST):
		return fmt.Errorf("table %d already has a route to %s that fib does not own (another protocol's, or on an excluded device): %w",
			f.table, o.Route.Prefix, err)
	}
	return err
}

// Close releases the netlink socket. The routes stay in the kernel: a
// restarted roamd finds them with List and takes them over.
func (f *FIB) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return f.k.Close()
}

// SyncError lists the routes a Sync could not install or delete.
type SyncError struct {
	Table  int
	Errors []*RouteError
}

// maxListed is how many routes a SyncError's message names.
const maxListed = 10

func (e *SyncError) Error() string {
	var b strings.Builder
	noun := "routes"
	if len(e.Errors) == 1 {
		noun = "route"
	}
	fmt.Fprintf(&b, "fib: sync table %d: %d %s failed", e.Table, len(e.Errors), noun)
	for i, re := range e.Errors {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(e.Errors)-maxListed)
			break
		}
		b.WriteString("; ")
		b.WriteString(strings.TrimPrefix(re.Error(), "fib: "))
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see every route's error.
func (e *SyncError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, re := range e.Errors {
		out[i] = re
	}
	return out
}

func compareRoute(a, b Route) int {
	return cmp.Or(a.Prefix.Compare(b.Prefix), a.Gateway.Compare(b.Gateway))
}
