package mobility

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// DefaultDebounce is the quiet time that ends a burst when Config.Debounce
// is zero.
const DefaultDebounce = 30 * time.Millisecond

// MaxDebounce is the largest Config.Debounce.
const MaxDebounce = 2 * time.Second

// Retry backoff after a failed netlink subscription or read.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 3 * time.Second
)

// Config configures a Watcher.
type Config struct {
	// Ignore reports the interfaces to leave out of every Snapshot (roamd
	// passes its WireGuard device, pod interfaces and lo). Nil leaves out
	// only lo.
	Ignore func(iface string) bool
	// Targets are the addresses whose path is tracked (the hubs' underlay
	// addresses). SetTargets replaces them.
	Targets []netip.Addr
	// Debounce is the quiet time that ends a burst of netlink messages
	// (a burst lasts at most 10 times this). Zero means DefaultDebounce; at
	// most MaxDebounce.
	Debounce time.Duration
	// Log receives the changes (Info) and netlink detail (Debug); nil
	// discards.
	Log *slog.Logger
}

func (c Config) validate() (Config, error) {
	if c.Ignore == nil {
		c.Ignore = func(iface string) bool { return iface == "lo" }
	}
	for _, t := range c.Targets {
		if !t.IsValid() {
			return c, fmt.Errorf("mobility: Targets: invalid address %q", t)
		}
	}
	c.Targets = cleanTargets(c.Targets)
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	if c.Debounce < 0 || c.Debounce > MaxDebounce {
		return c, fmt.Errorf("mobility: Debounce %q: must be 0 < d <= %v", c.Debounce, MaxDebounce)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Event is one coalesced burst of underlay changes.
type Event struct {
	// Seen is when the first netlink message of the burst arrived (or
	// SetTargets was called): handover timing starts here.
	Seen     time.Time
	Old, New Snapshot
	Change   Change // Delta(Old, New), never empty
}

// underlay is the OS as a Watcher sees it: netlink on Linux, a fake in
// tests.
type underlay interface {
	// Subscribe starts watching links, addresses and routes, and calls
	// poke, which never blocks, with the arrival time of every message,
	// from its own goroutines. The returned channel receives one value
	// when the subscription has ended and all its goroutines have exited:
	// nil after ctx ended, else why it failed (messages may have been
	// lost).
	Subscribe(ctx context.Context, poke func(time.Time)) (<-chan error, error)
	// Read returns the links, addresses and paths to targets now; the
	// Watcher normalizes them.
	Read(targets []netip.Addr) (Snapshot, error)
	// Close releases the underlay once nothing uses it any more.
	Close() error
}

// Watcher watches the underlay and publishes its changes as Events.
type Watcher struct {
	cfg    Config
	log    *slog.Logger
	under  underlay
	pokes  chan time.Time // 1-buffered: when the first unhandled message arrived
	events chan Event     // 1-buffered: an unread event is merged with the next

	mu      sync.Mutex
	targets []netip.Addr // sorted, unique
	current Snapshot     // the last one published
	started bool         // Run was called
}

// NewWatcher validates cfg and returns a Watcher of the calling thread's
// network namespace. It starts nothing, but holds a netlink socket and the
// namespace until Run returns.
func NewWatcher(cfg Config) (*Watcher, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	u, err := openUnderlay(cfg.Log.With("component", "mobility"))
	if err != nil {
		return nil, err
	}
	return newWatcher(cfg, u), nil
}

// newWatcher returns a Watcher of u; cfg is validated.
func newWatcher(cfg Config, u underlay) *Watcher {
	return &Watcher{
		cfg:     cfg,
		log:     cfg.Log.With("component", "mobility"),
		under:   u,
		pokes:   make(chan time.Time, 1),
		events:  make(chan Event, 1),
		targets: cfg.Targets,
	}
}

// Events returns the channel of coalesced changes, closed when Run has
// returned. It holds one Event: while it is unread, later bursts are merged
// into it (its Old and Seen kept, New replaced, Change recomputed), so a
// slow reader loses nothing and never blocks the Watcher.
func (w *Watcher) Events() <-chan Event { return w.events }

// Snapshot returns the underlay as of the last Event (before the first one:
// as Run found it; before Run: the zero Snapshot).
func (w *Watcher) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// SetTargets replaces the tracked targets. A running Watcher looks their
// paths up after the debounce and emits an Event if they differ.
func (w *Watcher) SetTargets(targets []netip.Addr) {
	for _, t := range targets {
		if !t.IsValid() {
			w.log.Warn("SetTargets: invalid address left out", "targets", targets)
			break
		}
	}
	ts := cleanTargets(targets)
	w.mu.Lock()
	w.targets = ts
	w.mu.Unlock()
	w.poke(time.Now())
}

// poke records that something changed at; it never blocks. An unhandled
// poke keeps the earliest time.
func (w *Watcher) poke(at time.Time) {
	select {
	case w.pokes <- at:
	default:
	}
}

// Run subscribes to the underlay's changes, takes the first snapshot and
// publishes Events until ctx ends. It returns nil after ctx ends, once every
// goroutine it started has exited, or an error if the first subscription or
// snapshot fails (later failures are retried). Run may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	started := w.started
	w.started = true
	w.mu.Unlock()
	if started {
		return errors.New("mobility: Run called twice")
	}
	defer close(w.events)
	defer func() {
		if err := w.under.Close(); err != nil {
			w.log.Warn("close netlink", "err", err)
		}
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended, err := w.under.Subscribe(ctx, w.poke)
	if err != nil {
		return fmt.Errorf("mobility: subscribe to netlink: %w", err)
	}
	// The first snapshot sees everything before this point.
	select {
	case <-w.pokes:
	default:
	}
	first, err := w.read()
	if err != nil {
		cancel()
		<-ended
		return fmt.Errorf("mobility: first snapshot: %w", err)
	}
	w.mu.Lock()
	w.current = first
	w.mu.Unlock()
	w.log.Info("watching the underlay", "links", len(first.Links), "addrs", len(first.Addrs), "paths", pathsString(first.Paths))

	var wg sync.WaitGroup
	wg.Go(func() { w.keepSubscribed(ctx, ended) })
	w.loop(ctx, first)
	wg.Wait()
	return nil
}

// keepSubscribed subscribes again, with backoff, whenever the subscription
// fails, and then has a fresh snapshot taken: messages may have been lost.
func (w *Watcher) keepSubscribed(ctx context.Context, ended <-chan error) {
	for {
		var err error
		select {
		case err = <-ended:
		case <-ctx.Done():
			<-ended
			return
		}
		if ctx.Err() != nil {
			return
		}
		failed := time.Now()
		w.log.Warn("netlink subscription failed; subscribing again", "err", err)
		for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
			if !sleep(ctx, backoff) {
				return
			}
			if ended, err = w.under.Subscribe(ctx, w.poke); err == nil {
				break
			}
			w.log.Warn("subscribe to netlink", "err", err, "retry_in", min(2*backoff, maxBackoff))
		}
		w.poke(failed)
	}
}

// loop turns pokes into Events until ctx ends; last is the snapshot the
// next Delta starts from.
func (w *Watcher) loop(ctx context.Context, last Snapshot) {
	for {
		var seen time.Time
		select {
		case <-ctx.Done():
			return
		case seen = <-w.pokes:
		}
		if !w.settle(ctx, seen) {
			return
		}
		snap, ok := w.readRetrying(ctx)
		if !ok {
			return
		}
		change := Delta(last, snap)
		if change.Empty() {
			w.log.Debug("underlay unchanged after a burst", "since", time.Since(seen))
			continue
		}
		ev := Event{Seen: seen, Old: last, New: snap, Change: change}
		last = snap
		w.mu.Lock()
		w.current = snap
		w.mu.Unlock()
		w.log.Info("underlay changed", "change", change.String(), "handover", change.Handover(), "took", time.Since(seen))
		if !w.publish(ctx, ev) {
			return
		}
	}
}

// settle waits until the burst that began at seen has been quiet for the
// debounce, or has lasted 10 debounces. It reports false if ctx ended.
func (w *Watcher) settle(ctx context.Context, seen time.Time) bool {
	d := w.cfg.Debounce
	deadline := seen.Add(10 * d)
	quiet := time.NewTimer(min(d, time.Until(deadline)))
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-w.pokes:
			quiet.Reset(min(d, time.Until(deadline)))
		case <-quiet.C:
			return true
		}
	}
}

// read takes a normalized snapshot of the current targets.
func (w *Watcher) read() (Snapshot, error) {
	w.mu.Lock()
	targets := w.targets
	w.mu.Unlock()
	s, err := w.under.Read(targets)
	if err != nil {
		return Snapshot{}, err
	}
	return normalize(s, w.cfg.Ignore), nil
}

// readRetrying reads until it succeeds, with backoff; false if ctx ended.
func (w *Watcher) readRetrying(ctx context.Context) (Snapshot, bool) {
	for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
		s, err := w.read()
		if err == nil {
			return s, true
		}
		w.log.Warn("read the underlay", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return Snapshot{}, false
		}
	}
}

// publish hands ev to the reader, merged into the event still unread if
// there is one. Only this goroutine sends on w.events, so after taking the
// unread event out the send finds room.
func (w *Watcher) publish(ctx context.Context, ev Event) bool {
	select {
	case w.events <- ev:
		return true
	default:
	}
	select {
	case unread := <-w.events:
		ev = merge(unread, ev)
		w.log.Debug("merged into the unread event", "change", ev.Change.String())
	default: // the reader took it meanwhile
	}
	if ev.Change.Empty() {
		w.log.Debug("unread event undone by the next one; dropped")
		return true
	}
	select {
	case w.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// merge returns the event that spans an unread event and the next one.
func merge(unread, next Event) Event {
	seen := unread.Seen
	if next.Seen.Before(seen) {
		seen = next.Seen
	}
	return Event{Seen: seen, Old: unread.Old, New: next.New, Change: Delta(unread.Old, next.New)}
}

// sleep waits for d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func pathsString(ps []Path) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p.Target.String() + ": " + p.String()
	}
	return s
}
