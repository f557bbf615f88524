package fib

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
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
	// owned is the routes fib owns in its table, by prefix: what the last
	// dump showed, with the changes made since. Update plans against it
	// instead of dumping the table; nil until the first dump, and after an
	// op whose outcome fib could not learn.
	owned map[netip.Prefix][]kroute
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

// ownedLocked dumps the table and returns the routes fib owns in it. It
// does not set f.owned: the caller does, with what it changes.
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
	f.owned = make(map[netip.Prefix][]kroute, max(len(have), len(want)))
	for _, kr := range have {
		f.owned[kr.Prefix] = append(f.owned[kr.Prefix], kr)
	}
	ops, refused := plan(have, want)
	res, err := f.applyLocked(ops, refused)
	if res != (Result{}) {
		f.log.Info("routes synced", "table", f.table, "wanted", len(want), "added", res.Added,
			"changed", res.Changed, "removed", res.Removed, "failed", res.Failed,
			"took", f.now().Sub(start).Round(time.Microsecond))
	}
	return res, err
}

// Update is Sync for some prefixes only: it makes the routes fib owns to
// each of prefixes, and to the prefixes of want, exactly those of want, and
// leaves every other route alone. It does not dump the table: it plans
// against the routes the last Sync found and fib changed since (the first
// Update of a FIB that never synced dumps). A route someone else deleted
// or added since comes back or goes at the next Sync. Errors are reported
// as by Sync.
func (f *FIB) Update(prefixes []netip.Prefix, want []Route) (Result, error) {
	start := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.owned == nil {
		have, err := f.ownedLocked()
		if err != nil {
			return Result{}, fmt.Errorf("fib: update table %d: list routes: %w", f.table, err)
		}
		f.owned = make(map[netip.Prefix][]kroute, len(have))
		for _, kr := range have {
			f.owned[kr.Prefix] = append(f.owned[kr.Prefix], kr)
		}
	}
	var have []kroute
	seen := make(map[netip.Prefix]bool, len(prefixes)+len(want))
	for _, p := range prefixes {
		if !seen[p] {
			seen[p] = true
			have = append(have, f.owned[p]...)
		}
	}
	for _, r := range want {
		if !seen[r.Prefix] {
			seen[r.Prefix] = true
			have = append(have, f.owned[r.Prefix]...)
		}
	}
	ops, refused := plan(have, want)
	res, err := f.applyLocked(ops, refused)
	if res != (Result{}) {
		f.log.Debug("routes updated", "table", f.table, "prefixes", len(seen), "added", res.Added,
			"changed", res.Changed, "removed", res.Removed, "failed", res.Failed,
			"took", f.now().Sub(start).Round(time.Microsecond))
	}
	return res, err
}

// applyLocked carries out ops, keeps f.owned up to date and counts what
// changed; refused are wanted routes plan turned down.
func (f *FIB) applyLocked(ops []op, refused []*RouteError) (Result, error) {
	var res Result
	var errs []*RouteError
	for _, e := range refused {
		errs = append(errs, e)
		res.Failed++
	}
	results := f.k.Apply(f.table, ops) // sets the device of routes added or replaced
	debug := f.log.Enabled(context.Background(), slog.LevelDebug)
	lost := false
	for i, o := range ops {
		err := results[i]
		if o.Kind == opDelete && errors.Is(err, syscall.ESRCH) {
			// Someone deleted it since the dump: gone, as wanted.
			f.log.Debug("route gone before its delete", "route", o.Route.route(), "dev", o.Route.Dev)
			f.forgetLocked(o.Route)
			continue
		}
		if err != nil {
			errs = append(errs, &RouteError{Op: o.Kind.String(), Route: o.Route.route(), Err: f.explain(o, err)})
			res.Failed++
			// The kernel refused it (an errno): nothing changed. Otherwise
			// its replies were lost and it may have been done.
			var errno syscall.Errno
			lost = lost || !errors.As(err, &errno)
			continue
		}
		switch o.Kind {
		case opAdd:
			res.Added++
			lost = !f.rememberLocked(o.Route) || lost
		case opChange:
			res.Changed++
			f.forgetLocked(o.Old)
			lost = !f.rememberLocked(o.Route) || lost
		case opDelete:
			res.Removed++
			f.forgetLocked(o.Route)
		}
		if debug {
			f.logOp(o)
		}
	}
	if lost {
		f.owned = nil // dump again before the next Update
	}
	if len(errs) > 0 {
		return res, &SyncError{Table: f.table, Errors: errs}
	}
	return res, nil
}

// rememberLocked records a route fib added or replaced as a dump would
// show it: with the kernel's default metric, and owned only if the device
// the kernel chose is not excluded (a gateway reached through the tunnel
// device makes a route that is not fib's). It returns false when the
// kernel did not say which device.
func (f *FIB) rememberLocked(kr kroute) bool {
	if kr.Dev == "" {
		return false
	}
	kr.Metric = defaultMetric(kr.Prefix)
	if f.owned != nil && owned(kr, f.exclude) {
		f.owned[kr.Prefix] = append(f.owned[kr.Prefix], kr)
	}
	return true
}

// forgetLocked drops a route that is no longer in the table.
func (f *FIB) forgetLocked(kr kroute) {
	if f.owned == nil {
		return
	}
	rs := slices.DeleteFunc(f.owned[kr.Prefix], func(x kroute) bool {
		return x.Gateway == kr.Gateway && x.Metric == kr.Metric && x.TOS == kr.TOS
	})
	if len(rs) == 0 {
		delete(f.owned, kr.Prefix)
	} else {
		f.owned[kr.Prefix] = rs
	}
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
	f.owned = nil
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
