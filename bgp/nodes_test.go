package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// node is one speaker of a multi-speaker test.
type node struct {
	name   string
	cfg    Config
	s      *Speaker
	log    *logRecorder
	events *eventLog
	stop   func() error
}

// fastTimers are the shortest timers validate accepts.
func fastTimers(c Config) Config {
	c.HoldTime, c.KeepaliveInterval, c.ConnectRetry, c.IdleHoldTime = 3*time.Second, time.Second, time.Second, time.Second
	return c
}

// newNode builds a speaker with fast timers and a free gRPC port; cfg's
// ASN, RouterID, listener and neighbours come from the caller.
func newNode(t *testing.T, name string, cfg Config) *node {
	t.Helper()
	cfg = fastTimers(cfg)
	if cfg.GRPCAddress == "" {
		cfg.GRPCAddress = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	l, rec := recordingLogger(t, name)
	s, err := New(cfg, l)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	return &node{name: name, cfg: cfg, s: s, log: rec, events: collect(s)}
}

// startNodes runs the nodes one after the other. After each start it asks
// every running node for its neighbours: GoBGP's StartBgp writes package
// globals that every server's path selection reads, and these calls order
// the write before the other servers' next selection (sessions need at
// least a second to come up, so no selection runs in between).
func startNodes(t *testing.T, ns ...*node) {
	t.Helper()
	for i, n := range ns {
		n.stop = runSpeaker(t, n.s)
		started(t, n.s, len(n.cfg.Neighbors))
		for _, m := range ns[:i] {
			if _, err := m.s.Neighbors(context.Background()); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
		}
	}
}

func (n *node) announce(t *testing.T, p netip.Prefix, nh netip.Addr) {
	t.Helper()
	if err := n.s.Announce(context.Background(), p, nh); err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
}

func (n *node) waitEstablished(t *testing.T, addrs ...netip.Addr) {
	t.Helper()
	for _, a := range addrs {
		eventually(t, 20*time.Second, func() string {
			if why := established(t, n.s, a); why != "" {
				return n.name + ": " + why
			}
			return ""
		})
	}
}

// pathFrom returns n's path for p learned from neighbour from.
func (n *node) pathFrom(t *testing.T, p netip.Prefix, from netip.Addr) (Route, bool) {
	t.Helper()
	for _, r := range pathsFor(t, n.s, p) {
		if r.From == from {
			return r, true
		}
	}
	return Route{}, false
}

// waitRoute waits until n has a path for p from neighbour from with next hop
// nh.
func (n *node) waitRoute(t *testing.T, p netip.Prefix, from, nh netip.Addr) Route {
	t.Helper()
	var r Route
	eventually(t, 10*time.Second, func() string {
		var ok bool
		r, ok = n.pathFrom(t, p, from)
		if !ok {
			return fmt.Sprintf("%s has no path for %s from %s: %+v", n.name, p, from, pathsFor(t, n.s, p))
		}
		if r.NextHop != nh {
			return fmt.Sprintf("%s's path for %s from %s has next hop %s, want %s", n.name, p, from, r.NextHop, nh)
		}
		return ""
	})
	return r
}

// neighbor returns n's view of neighbour addr.
func (n *node) neighbor(t *testing.T, addr netip.Addr) NeighborState {
	t.Helper()
	ns, err := n.s.Neighbors(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	for _, x := range ns {
		if x.Address == addr {
			return x
		}
	}
	t.Fatalf("%s has no neighbour %s", n.name, addr)
	return NeighborState{}
}

// largeCommunities returns the large communities on n's paths for p.
func (n *node) largeCommunities(t *testing.T, p netip.Prefix) []string {
	t.Helper()
	srv, err := n.s.server()
	if err != nil {
		t.Fatal(err)
	}
	f := family6
	if p.Addr().Is4() {
		f = family4
	}
	var out []string
	err = srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f,
		Prefixes: []*api.TableLookupPrefix{{Prefix: p.String()}}}, func(d *api.Destination) {
		for _, path := range d.Paths {
			attrs, err := apiutil.GetNativePathAttributes(path)
			if err != nil {
				t.Error(err)
				return
			}
			for _, a := range attrs {
				if lc, ok := a.(*bgppkt.PathAttributeLargeCommunities); ok {
					for _, c := range lc.Values {
						out = append(out, c.String())
					}
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
