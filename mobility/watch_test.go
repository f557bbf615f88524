package mobility

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeUnderlay is an underlay in memory: the test changes its state and
// pokes the Watcher, as netlink messages would.
type fakeUnderlay struct {
	mu       sync.Mutex
	links    []Link
	addrs    []Addr
	paths    map[netip.Addr]Path // by target; a target without one is unreachable
	poke     func(time.Time)     // of the current subscription
	fail     chan error          // ends the current subscription with the error
	subs     int                 // subscriptions made
	subErrs  int                 // how many Subscribe calls fail next
	readErrs int                 // how many Read calls fail next
	reads    int
	closed   bool
}

func newFake() *fakeUnderlay {
	s := phoneSnap()
	f := &fakeUnderlay{links: s.Links, addrs: s.Addrs, paths: map[netip.Addr]Path{}, fail: make(chan error)}
	for _, p := range s.Paths {
		f.paths[p.Target] = p
	}
	return f
}

func (f *fakeUnderlay) Subscribe(ctx context.Context, poke func(time.Time)) (<-chan error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subErrs > 0 {
		f.subErrs--
		return nil, errors.New("fake: subscribe failed")
	}
	f.subs++
	f.poke = poke
	ended := make(chan error, 1)
	go func() {
		select {
		case <-ctx.Done():
			ended <- nil
		case err := <-f.fail:
			ended <- err
		}
	}()
	return ended, nil
}

func (f *fakeUnderlay) Read(targets []netip.Addr) (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.readErrs > 0 {
		f.readErrs--
		return Snapshot{}, errors.New("fake: read failed")
	}
	s := editSnap(Snapshot{Links: f.links, Addrs: f.addrs}, func(*Snapshot) {})
	for _, t := range targets {
		p, ok := f.paths[t]
		if !ok {
			p = Path{Target: t}
		}
		s.Paths = append(s.Paths, p)
	}
	return s, nil
}

func (f *fakeUnderlay) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// breakSubscription ends the current subscription with err: later
// changes are not announced until the Watcher subscribes again.
func (f *fakeUnderlay) breakSubscription(err error) {
	f.mu.Lock()
	f.poke = nil
	f.mu.Unlock()
	f.fail <- err
}

// change edits the state and, if subscribed, sends one message.
func (f *fakeUnderlay) change(edit func(f *fakeUnderlay)) {
	f.mu.Lock()
	edit(f)
	poke := f.poke
	f.mu.Unlock()
	if poke != nil {
		poke(time.Now())
	}
}

// snapshot is the state as the Watcher should see it.
func (f *fakeUnderlay) snapshot(targets ...netip.Addr) Snapshot {
	s, _ := f.Read(targets)
	f.mu.Lock()
	f.reads--
	f.mu.Unlock()
	return normalize(s, ignoreRoam)
}

// Changes of the phone's state.
func wifiCut(f *fakeUnderlay) {
	f.links = replaceLink(f.links, linkCut("eth1", 2))
	f.paths[hubAddr] = pathVia("eth2", lteSrc, lteGw)
}

func wifiBack(f *fakeUnderlay) {
	f.links = replaceLink(f.links, linkUp("eth1", 2))
	f.paths[hubAddr] = pathVia("eth1", wifiSrc, wifiGw)
}

func replaceLink(ls []Link, l Link) []Link {
	out := editSnap(Snapshot{Links: ls}, func(*Snapshot) {}).Links
	for i := range out {
		if out[i].Name == l.Name {
			out[i] = l
		}
	}
	return out
}

func addAddr(a Addr) func(*fakeUnderlay) {
	return func(f *fakeUnderlay) {
		f.addrs = append(editSnap(Snapshot{Addrs: f.addrs}, func(*Snapshot) {}).Addrs, a)
	}
}

const debounce = 30 * time.Millisecond

// running is a Watcher running over a fake in a synctest bubble.
type running struct {
	w      *Watcher
	f      *fakeUnderlay
	cancel context.CancelFunc
	errc   chan error
	logs   *syncBuffer
}

func start(t *testing.T, f *fakeUnderlay, cfg Config) *running {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Ignore = ignoreRoam
	if cfg.Targets == nil {
		cfg.Targets = []netip.Addr{hubAddr}
	}
	cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{w: newWatcher(cfg, f), f: f, cancel: cancel, errc: make(chan error, 1), logs: logs}
	go func() { r.errc <- r.w.Run(ctx) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	synctest.Wait()
	return r
}

// stop cancels Run and returns its result; it may be called again.
func (r *running) stop() error {
	r.cancel()
	err, ok := <-r.errc
	if !ok {
		return nil
	}
	close(r.errc)
	return err
}

// event returns the unread event, if there is one, once the Watcher has
// nothing left to do at this instant.
func (r *running) event() (Event, bool) {
	synctest.Wait()
	select {
	case ev, ok := <-r.w.Events():
		return ev, ok
	default:
		return Event{}, false
	}
}

func (r *running) mustEvent(t *testing.T) Event {
	t.Helper()
	ev, ok := r.event()
	if !ok {
		t.Fatalf("no event; logs:\n%s", r.logs.String())
	}
	return ev
}

func (r *running) noEvent(t *testing.T) {
	t.Helper()
	if ev, ok := r.event(); ok {
		t.Fatalf("unexpected event: %s", ev.Change)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func checkEvent(t *testing.T, ev Event, seen time.Time, old, new Snapshot) {
	t.Helper()
	if !ev.Seen.Equal(seen) {
		t.Errorf("Seen = %v, want %v", ev.Seen, seen)
	}
	if !reflect.DeepEqual(ev.Old, old) {
		t.Errorf("Old:\n got %+v\nwant %+v", ev.Old, old)
	}
	if !reflect.DeepEqual(ev.New, new) {
		t.Errorf("New:\n got %+v\nwant %+v", ev.New, new)
	}
	if want := Delta(old, new); !reflect.DeepEqual(ev.Change, want) {
		t.Errorf("Change = %s, want %s", ev.Change, want)
	}
}

func TestWatcherFirstSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		if got, want := r.w.Snapshot(), f.snapshot(hubAddr); !reflect.DeepEqual(got, want) {
			t.Fatalf("Snapshot:\n got %+v\nwant %+v", got, want)
		}
		r.noEvent(t)
	})
}

// Five messages, each within the debounce of the one before, are one Event
// that starts at the first and is emitted a debounce after the last.
func TestWatcherBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		old := r.w.Snapshot()
		first := time.Now()
		f.change(wifiCut)
		for i := range 4 {
			time.Sleep(debounce - time.Millisecond)
			f.change(addAddr(addrOn("eth2", "2001:db8::"+string(rune('1'+i))+"/64")))
		}
		time.Sleep(debounce - time.Millisecond)
		r.noEvent(t)
		time.Sleep(time.Millisecond)
		ev := r.mustEvent(t)
		checkEvent(t, ev, first, old, f.snapshot(hubAddr))
		if !ev.Change.Handover() || len(ev.Change.AddrsAdded) != 4 {
			t.Errorf("Change = %s (handover %v), want eth1 down, 4 addresses, a handover", ev.Change, ev.Change.Handover())
		}
		if got := r.w.Snapshot(); !reflect.DeepEqual(got, ev.New) {
			t.Errorf("Snapshot() is not the event's New")
		}
		logs := r.logs.String()
		for _, want := range []string{
			`msg="underlay changed"`,
			`change="eth1 down; eth2 +2001:db8::1/64;`,
			"path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> eth2 192.0.2.66 via 192.0.2.65",
			"handover=true took=146ms",
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q:\n%s", want, logs)
			}
		}
		time.Sleep(time.Second)
		r.noEvent(t)
	})
}

// A storm of messages closer than the debounce still gives an Event
// every 10 debounces.
func TestWatcherStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		first := time.Now()
		var events []time.Duration
		var sizes []int
		for i := range 70 {
			f.change(addAddr(addrOn("eth3", fmt.Sprintf("198.51.100.%d/24", i+1))))
			time.Sleep(10 * time.Millisecond)
			if ev, ok := r.event(); ok {
				events = append(events, time.Since(first))
				sizes = append(sizes, len(ev.Change.AddrsAdded))
			}
		}
		// Each burst is cut 300 ms after its first message: the first holds
		// the messages of 0-290 ms, the next those of 300-590 ms.
		want := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}
		if !slices.Equal(events, want) || !slices.Equal(sizes, []int{30, 30}) {
			t.Fatalf("events at %v with %v new addresses, want at %v with 30 each", events, sizes, want)
		}
	})
}

// A reader that does not keep up gets one Event: the Old and Seen of the
// first burst, the New of the last.
func TestWatcherSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		old := r.w.Snapshot()
		first := time.Now()
		f.change(wifiCut)
		time.Sleep(time.Second)
		f.change(addAddr(addrOn("eth2", "2001:db8::2/64")))
		time.Sleep(time.Second)
		f.change(func(f *fakeUnderlay) { f.paths[hubAddr] = Path{Target: hubAddr} })
		time.Sleep(time.Second)
		ev := r.mustEvent(t)
		checkEvent(t, ev, first, old, f.snapshot(hubAddr))
		if got := ev.Change.String(); got != "eth1 down; eth2 +2001:db8::2/64; path 203.0.113.1: eth1 192.0.2.2 via 192.0.2.1 -> unreachable" {
			t.Errorf("Change = %s", got)
		}
		r.noEvent(t)

		// The next event starts where the merged one ended.
		second := time.Now()
		f.change(wifiBack)
		time.Sleep(time.Second)
		checkEvent(t, r.mustEvent(t), second, ev.New, f.snapshot(hubAddr))
	})
}

// A change undone before the reader got to it is no change.
func TestWatcherUndoneWhileUnread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		f.change(wifiCut)
		time.Sleep(time.Second)
		f.change(wifiBack)
		time.Sleep(time.Second)
		r.noEvent(t)
		if got, want := r.w.Snapshot(), f.snapshot(hubAddr); !reflect.DeepEqual(got, want) {
			t.Fatalf("Snapshot:\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestWatcherIgnoredInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		f.change(addAddr(addrOn("roam0", "100.64.0.7/32")))
		f.change(func(f *fakeUnderlay) { f.links = replaceLink(f.links, linkCut("roam0", 9)) })
		time.Sleep(time.Second)
		r.noEvent(t)
		if f.reads < 2 {
			t.Fatalf("%d reads: the messages were not looked at", f.reads)
		}
	})
}

func TestWatcherSetTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.paths[hubAddr2] = Path{Target: hubAddr2, Iface: "eth2", Src: lteSrc, Gateway: lteGw, Reachable: true}
		r := start(t, f, Config{})
		old := r.w.Snapshot()
		at := time.Now()
		r.w.SetTargets([]netip.Addr{hubAddr2, hubAddr, {}})
		time.Sleep(debounce)
		ev := r.mustEvent(t)
		checkEvent(t, ev, at, old, f.snapshot(hubAddr, hubAddr2))
		if ev.Change.Handover() || len(ev.Change.PathsChanged) != 1 {
			t.Errorf("Change = %s, want only the new target's path, not a handover", ev.Change)
		}
		if !strings.Contains(r.logs.String(), "SetTargets: invalid address left out") {
			t.Errorf("the invalid target was not logged")
		}

		r.w.SetTargets([]netip.Addr{hubAddr, hubAddr2})
		time.Sleep(time.Second)
		r.noEvent(t)
	})
}

// After the subscription fails, the Watcher subscribes again and compares
// a fresh snapshot: a change whose messages were lost is still reported.
func TestWatcherResubscribes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		old := r.w.Snapshot()
		failed := time.Now()
		f.mu.Lock()
		f.subErrs = 2
		f.mu.Unlock()
		f.breakSubscription(errors.New("fake: ENOBUFS"))
		f.change(wifiCut) // not subscribed: lost
		time.Sleep(minBackoff + 2*minBackoff + 4*minBackoff - time.Millisecond)
		r.noEvent(t)
		// The burst began when the failure was seen, more than 10 debounces
		// ago: the snapshot is taken at once.
		time.Sleep(time.Millisecond)
		checkEvent(t, r.mustEvent(t), failed, old, f.snapshot(hubAddr))
		if f.subs != 2 {
			t.Errorf("%d subscriptions, want 2", f.subs)
		}
		logs := r.logs.String()
		if !strings.Contains(logs, "netlink subscription failed; subscribing again") || !strings.Contains(logs, "fake: ENOBUFS") {
			t.Errorf("the failure was not logged:\n%s", logs)
		}
	})
}

func TestWatcherReadRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		old := r.w.Snapshot()
		at := time.Now()
		f.change(func(f *fakeUnderlay) { f.readErrs = 1; wifiCut(f) })
		time.Sleep(debounce + minBackoff - time.Millisecond)
		r.noEvent(t)
		time.Sleep(time.Millisecond)
		checkEvent(t, r.mustEvent(t), at, old, f.snapshot(hubAddr))
	})
}

// Run returns nil once ctx ends, closes Events and the underlay; the
// unread event stays readable.
func TestWatcherStops(t *testing.T) {
	checkGoroutines(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, Config{})
		f.change(wifiCut)
		time.Sleep(time.Second)
		f.change(wifiBack) // still waiting for the debounce when Run ends
		r.cancel()
		synctest.Wait()
		select {
		case err := <-r.errc:
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			close(r.errc)
		default:
			t.Fatal("Run did not return once ctx ended")
		}
		if !f.closed {
			t.Error("underlay not closed")
		}
		if ev, ok := <-r.w.Events(); !ok || len(ev.Change.LinksDown) != 1 {
			t.Errorf("unread event: %v, %v; want eth1 down", ev.Change, ok)
		}
		if _, ok := <-r.w.Events(); ok {
			t.Error("Events not closed")
		}
		if err := r.w.Run(t.Context()); err == nil {
			t.Error("a second Run succeeded")
		}
	})
}

func TestWatcherFirstReadFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.readErrs = 1
		cfg, _ := Config{Targets: []netip.Addr{hubAddr}}.validate()
		w := newWatcher(cfg, f)
		if err := w.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "mobility: first snapshot: fake: read failed") {
			t.Fatalf("Run = %v", err)
		}
		if _, ok := <-w.Events(); ok || !f.closed {
			t.Fatalf("Events open or underlay not closed")
		}
	})
}

func TestWatcherFirstSubscribeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.subErrs = 1
		cfg, _ := Config{}.validate()
		if err := newWatcher(cfg, f).Run(t.Context()); err == nil || !strings.Contains(err.Error(), "mobility: subscribe to netlink") {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		err      string
		debounce time.Duration
	}{
		{name: "defaults", cfg: Config{}, debounce: DefaultDebounce},
		{name: "largest debounce", cfg: Config{Debounce: MaxDebounce}, debounce: MaxDebounce},
		{name: "negative debounce", cfg: Config{Debounce: -time.Millisecond}, err: `mobility: Debounce "-1ms": must be 0 < d <= 2s`},
		{name: "debounce too long", cfg: Config{Debounce: 3 * time.Second}, err: `mobility: Debounce "3s": must be 0 < d <= 2s`},
		{name: "invalid target", cfg: Config{Targets: []netip.Addr{hubAddr, {}}}, err: `mobility: Targets: invalid address "invalid IP"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.validate()
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("validate() = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Debounce != tt.debounce || cfg.Log == nil {
				t.Fatalf("Debounce %v (want %v), Log %v", cfg.Debounce, tt.debounce, cfg.Log)
			}
			if !cfg.Ignore("lo") || cfg.Ignore("eth0") || cfg.Ignore("roam0") {
				t.Fatal("nil Ignore must leave out lo only")
			}
		})
	}
}
