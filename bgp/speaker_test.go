package bgp

import (
	"context"
	"errors"
	"fmt"
	"go.uber.org/goleak"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	asnA = 4200000001
	asnB = 4200000002
	asnC = 4200000003
)

var (
	loop4  = netip.MustParseAddr("127.0.0.1")
	loop6  = netip.MustParseAddr("::1")
	podA4  = netip.MustParsePrefix("10.244.1.0/24")
	podA6  = netip.MustParsePrefix("2001:db8:1::/64")
	podB4  = netip.MustParsePrefix("10.244.2.0/24")
	extraA = netip.MustParsePrefix("10.244.3.0/24")
	nhA4   = netip.MustParseAddr("100.64.0.1")
	nhA6   = netip.MustParseAddr("fd00::1")
	nhB4   = netip.MustParseAddr("100.64.0.2")
)

// eventLog records a speaker's Updates.
type eventLog struct {
	mu   sync.Mutex
	last map[netip.Prefix]RouteEvent
	all  []RouteEvent
}

func collect(s *Speaker) *eventLog {
	l := &eventLog{last: make(map[netip.Prefix]RouteEvent)}
	go func() {
		for ev := range s.Updates() {
			l.mu.Lock()
			l.last[ev.Route.Prefix] = ev
			l.all = append(l.all, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *eventLog) get(p netip.Prefix) (RouteEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev, ok := l.last[p]
	return ev, ok
}

func bestRoute(t *testing.T, s *Speaker, p netip.Prefix) (Route, bool) {
	t.Helper()
	rs, err := s.Routes(context.Background())
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	for _, r := range rs {
		if r.Prefix == p && r.Best {
			return r, true
		}
	}
	return Route{}, false
}

func pathsFor(t *testing.T, s *Speaker, p netip.Prefix) []Route {
	t.Helper()
	rs, err := s.Routes(context.Background())
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	var out []Route
	for _, r := range rs {
		if r.Prefix == p {
			out = append(out, r)
		}
	}
	return out
}

func prefixes(rs []Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Prefix.String())
	}
	slices.Sort(out)
	return out
}

func established(t *testing.T, s *Speaker, addr netip.Addr) string {
	ns, err := s.Neighbors(context.Background())
	if err != nil {
		return err.Error()
	}
	for _, n := range ns {
		if n.Address == addr {
			if n.Established() {
				return ""
			}
			return fmt.Sprintf("neighbor %s is %s", addr, n.State)
		}
	}
	return fmt.Sprintf("neighbor %s not listed in %+v", addr, ns)
}

// started waits until s's Run has added its n neighbours, which is after
// StartBgp. GoBGP v3.37.0's StartBgp writes table.SelectionOptions, a package
// global every server reads during best-path selection, so speakers in one
// process must not start while others are selecting paths.
func started(t *testing.T, s *Speaker, n int) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		ns, err := s.Neighbors(context.Background())
		if err != nil || len(ns) != n {
			return fmt.Sprintf("speaker not started: %d neighbours, %v", len(ns), err)
		}
		return ""
	})
}

func newSpeaker(t *testing.T, name string, cfg Config) *Speaker {
	t.Helper()
	s, err := New(cfg, testLogger(t, name))
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	return s
}

// TestPeering runs A - B - C on loopback: A-B over 127.0.0.1, B-C over ::1,
// B listening on a free port with both neighbours passive.
func TestPeering(t *testing.T) {
	before := goleak.IgnoreCurrent()
	portB, grpcB := freePort(t), freePort(t)
	// Graceful restart off: see newHubTopology.
	timers := func(c Config) Config {
		c.HoldTime, c.KeepaliveInterval, c.ConnectRetry, c.IdleHoldTime = 3*time.Second, time.Second, time.Second, time.Second
		c.DisableGracefulRestart = true
		return c
	}
	a := newSpeaker(t, "A", timers(Config{
		ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
		GRPCAddress: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Neighbors:   []Neighbor{{Address: loop4, Port: portB, ASN: asnB, Description: "B"}},
	}))
	b := newSpeaker(t, "B", timers(Config{
		ASN: asnB, RouterID: netip.MustParseAddr("10.0.0.2"), ListenPort: portB,
		ListenAddresses: []netip.Addr{loop4, loop6},
		GRPCAddress:     fmt.Sprintf("127.0.0.1:%d", grpcB),
		Neighbors: []Neighbor{
			{Address: loop4, ASN: asnA, Passive: true, Description: "A"},
			{Address: loop6, ASN: asnC, Passive: true, Description: "C"},
		},
	}))
	c := newSpeaker(t, "C", timers(Config{
		ASN: asnC, RouterID: netip.MustParseAddr("10.0.0.3"), ListenPort: -1,
		GRPCAddress: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Neighbors:   []Neighbor{{Address: loop6, Port: portB, ASN: asnB, Description: "B"}},
	}))
	ctx := context.Background()

	// Announced before Run: originated when Run starts.
	if err := a.Announce(ctx, podA4, nhA4); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Routes(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Routes before Run = %v, want ErrNotRunning", err)
	}
	eventsB := collect(b)
	// One at a time: every GoBGP StartBgp writes package globals that other
	// servers' best-path selection reads (see started).
	stopB := runSpeaker(t, b)
	started(t, b, 2)
	stopC := runSpeaker(t, c)
	started(t, c, 1)
	stopA := runSpeaker(t, a)
	started(t, a, 1)

	eventually(t, 20*time.Second, func() string { return established(t, b, loop4) })
	eventually(t, 20*time.Second, func() string { return established(t, b, loop6) })
	if err := a.Announce(ctx, podA6, nhA6); err != nil {
		t.Fatal(err)
	}

	t.Run("B learns A's prefixes as best paths", func(t *testing.T) {
		for _, want := range []struct {
			p  netip.Prefix
			nh netip.Addr
		}{{podA4, nhA4}, {podA6, nhA6}} {
			eventually(t, 10*time.Second, func() string {
				r, ok := bestRoute(t, b, want.p)
				if !ok {
					return fmt.Sprintf("B has no best path for %s", want.p)
				}
				if r.NextHop != want.nh || r.From != loop4 || r.Originated || !slices.Equal(r.ASPath, []uint32{asnA}) {
					return fmt.Sprintf("B's best path %+v, want next hop %s from %s AS path [%d]", r, want.nh, loop4, asnA)
				}
				return ""
			})
			eventually(t, 5*time.Second, func() string {
				ev, ok := eventsB.get(want.p)
				if !ok || ev.Withdrawn || ev.Route.NextHop != want.nh || !ev.Route.Best || ev.Route.From != loop4 {
					return fmt.Sprintf("B's last update for %s = %+v (seen %v)", want.p, ev, ok)
				}
				return ""
			})
		}
		r, ok := bestRoute(t, a, podA4)
		if !ok || !r.Originated || r.NextHop != nhA4 {
			t.Errorf("A's own route = %+v (found %v), want originated via %s", r, ok, nhA4)
		}
	})

	t.Run("neighbors report counts", func(t *testing.T) {
		ns, err := b.Neighbors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Address == loop4 && (n.ASN != asnA || n.Accepted < 2 || n.Received < 2 || n.Description != "A" || n.Uptime < 0 || n.State != "established") {
				t.Errorf("B's view of A = %+v, want established, ASN %d, >= 2 received and accepted", n, asnA)
			}
		}
	})

	t.Run("gobgp CLI sees the session and the routes", func(t *testing.T) {
		out := gobgpCLI(t, grpcB, "neighbor")
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == "127.0.0.1" && strings.Contains(line, "Establ") {
				found = true
			}
		}
		if !found {
			t.Errorf("gobgp neighbor does not list 127.0.0.1 as Established:\n%s", out)
		}
		if out := gobgpCLI(t, grpcB, "global", "rib"); !strings.Contains(out, podA4.String()) || !strings.Contains(out, nhA4.String()) {
			t.Errorf("gobgp global rib lacks %s via %s:\n%s", podA4, nhA4, out)
		}
		if out := gobgpCLI(t, grpcB, "global", "rib", "-a", "ipv6"); !strings.Contains(out, podA6.String()) {
			t.Errorf("gobgp global rib -a ipv6 lacks %s:\n%s", podA6, out)
		}
	})

	t.Run("export only what we originate", func(t *testing.T) {
		if err := b.Announce(ctx, podB4, nhB4); err != nil {
			t.Fatal(err)
		}
		// Positive control: B's own prefix reaches both neighbours.
		for name, s := range map[string]*Speaker{"A": a, "C": c} {
			eventually(t, 10*time.Second, func() string {
				if _, ok := bestRoute(t, s, podB4); !ok {
					return fmt.Sprintf("%s has no route for B's %s", name, podB4)
				}
				return ""
			})
		}
		// B learned A's prefixes but is not a transit: C never gets them.
		for _, p := range []netip.Prefix{podA4, podA6} {
			if rs := pathsFor(t, c, p); len(rs) != 0 {
				t.Errorf("C learned %s through B: %+v", p, rs)
			}
		}
		for _, nb := range []netip.Addr{loop4, loop6} {
			rs, err := b.Advertised(ctx, nb)
			if err != nil {
				t.Fatal(err)
			}
			if got := prefixes(rs); !slices.Equal(got, []string{podB4.String()}) {
				t.Errorf("B advertises %v to %s, want only %s", got, nb, podB4)
			}
		}
		// A never learns its own prefix back.
		for _, r := range pathsFor(t, a, podA4) {
			if !r.Originated {
				t.Errorf("A learned its own %s back: %+v", podA4, r)
			}
		}
	})

	t.Run("import rejects a neighbour's path for our own prefix", func(t *testing.T) {
		// A claims B's prefix, then announces another one as a marker that
		// its updates have arrived.
		if err := a.Announce(ctx, podB4, nhA4); err != nil {
			t.Fatal(err)
		}
		if err := a.Announce(ctx, extraA, nhA4); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() string {
			if _, ok := bestRoute(t, b, extraA); !ok {
				return fmt.Sprintf("B has no route for %s", extraA)
			}
			return ""
		})
		rs := pathsFor(t, b, podB4)
		if len(rs) != 1 || !rs[0].Originated || rs[0].NextHop != nhB4 {
			t.Errorf("B's paths for its own %s = %+v, want only its originated one", podB4, rs)
		}
		if err := a.Withdraw(ctx, podB4); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("withdraw", func(t *testing.T) {
		if err := a.Withdraw(ctx, podA4); err != nil {
			t.Fatal(err)
		}
		if err := a.Withdraw(ctx, podA4); !errors.Is(err, ErrNotAnnounced) {
			t.Errorf("second Withdraw = %v, want ErrNotAnnounced", err)
		}
		eventually(t, 10*time.Second, func() string {
			if rs := pathsFor(t, b, podA4); len(rs) != 0 {
				return fmt.Sprintf("B still has %+v", rs)
			}
			return ""
		})
		eventually(t, 5*time.Second, func() string {
			if ev, _ := eventsB.get(podA4); !ev.Withdrawn {
				return fmt.Sprintf("B's last update for %s = %+v, want withdrawn", podA4, ev)
			}
			return ""
		})
		if _, ok := bestRoute(t, b, podA6); !ok {
			t.Errorf("withdrawing %s also removed %s", podA4, podA6)
		}
	})

	for name, stop := range map[string]func() error{"A": stopA, "B": stopB, "C": stopC} {
		if err := stop(); err != nil {
			t.Errorf("%s: Run returned %v after cancel, want nil", name, err)
		}
	}
	checkNoLeaks(t, before)
}

// gobgpCLI runs the stock gobgp v3.37.0 CLI (a go tool of this module)
// against the gRPC port.
func gobgpCLI(t *testing.T, port int, args ...string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "gobgp", "-p", fmt.Sprint(port)}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool gobgp %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestRunGRPCBindFailure: GoBGP calls Fatal when its gRPC address is taken;
// Run must return that as an error instead of the process exiting.
func TestRunGRPCBindFailure(t *testing.T) {
	before := goleak.IgnoreCurrent()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := newSpeaker(t, "X", Config{
		ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
		GRPCAddress: l.Addr().String(),
	})
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "failed to listen grpc port") {
			t.Fatalf("Run = %v, want the gRPC listen failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after GoBGP's fatal")
	}
	if _, ok := <-s.Updates(); ok {
		t.Error("Updates not closed after Run returned")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
	checkNoLeaks(t, before)
}

func TestAnnounceRejectsBadInput(t *testing.T) {
	s := newSpeaker(t, "X", Config{ASN: asnA, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1})
	ctx := context.Background()
	tests := []struct {
		name   string
		prefix netip.Prefix
		nh     netip.Addr
	}{
		{"host bits set", netip.MustParsePrefix("10.244.1.1/24"), nhA4},
		{"invalid prefix", netip.Prefix{}, nhA4},
		{"ipv6 next hop for ipv4", podA4, nhA6},
		{"ipv4 next hop for ipv6", podA6, nhA4},
		{"no next hop", podA4, netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Announce(ctx, tt.prefix, tt.nh)
			if err == nil || !strings.HasPrefix(err.Error(), "bgp: announce ") {
				t.Fatalf("Announce(%s, %s) = %v, want a bgp: announce error", tt.prefix, tt.nh, err)
			}
		})
	}
	if err := s.Withdraw(ctx, podA4); !errors.Is(err, ErrNotAnnounced) {
		t.Errorf("Withdraw of a prefix never announced = %v, want ErrNotAnnounced", err)
	}
}
