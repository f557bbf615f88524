package main

import (
	"context"
	"net/netip"
	"time"

	"github.com/roamnet/roam/api/roampb"
	"github.com/roamnet/roam/mobility"
	"github.com/roamnet/roam/probe"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Handover timing.
const (
	// pingEvery is how often a node pings its hubs after an underlay
	// change until one answers (WireGuard roaming moves the hub's endpoint
	// on the first packet that arrives from the new address).
	pingEvery = 100 * time.Millisecond
	// pingFor bounds that.
	pingFor = 10 * time.Second
	// convergeEvery is how often a handover checks whether the routes are
	// back.
	convergeEvery = 50 * time.Millisecond
	// followFor bounds how long a handover is followed (the recorder's
	// deadline).
	followFor = time.Minute
)

// handover is this node's open handover: an underlay change being
// followed until the hubs answer, the direct paths are back and the BGP
// sessions are up again.
type handover struct {
	id     uint64
	seen   time.Time
	hubOK  bool
	direct map[string]bool // direct paths that were connected: back yet?
	// sessions are the BGP neighbours established when it began: the
	// routes are back when they are again (a peer that was offline then
	// does not hold the event up).
	sessions map[netip.Addr]bool
	done     bool
}

// underlayChanged handles an event of the watcher: a change that moves
// traffic is a handover (the hubs are pinged so their WireGuard endpoint
// follows at once, every direct path restarts ICE, the old pair stays in
// use until a new one is selected); any other change of addresses only
// restarts ICE, for the new host candidates.
func (m *mob) underlayChanged(ev mobility.Event) {
	restart := ev.Change.Handover() || len(ev.Change.AddrsAdded)+len(ev.Change.AddrsRemoved) > 0
	if !ev.Change.Handover() {
		if restart {
			m.restartDirects("addresses changed")
		}
		return
	}
	rec := m.d.events
	sessions := m.establishedSessions()
	m.mu.Lock()
	ho := handover{seen: ev.Seen, direct: map[string]bool{}, sessions: sessions}
	expect := []mobility.Expect{{Phase: mobility.PhaseHubPath}}
	for _, dp := range m.directs {
		if dp.inUse(dp.dir.Status()) {
			ho.direct[dp.m.name] = false
			expect = append(expect, mobility.Expect{Phase: mobility.PhaseDirectPath, Peer: dp.m.name})
		}
	}
	if m.d.speaker != nil {
		expect = append(expect, mobility.Expect{Phase: mobility.PhaseRoutes})
	}
	ho.id = rec.Begin(mobility.KindUnderlay, "", ev.Seen, ev.Change.String(), expect)
	m.ho = ho
	m.mu.Unlock()
	m.log.Info("handover: started", "event", ho.id, "change", ev.Change.String(), "direct_paths", len(ho.direct))
	m.restartDirects("underlay changed")
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.follow(ho.id)
	}()
}

func (m *mob) restartDirects(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, dp := range m.directs {
		dp.dir.Restart(reason)
	}
}

// follow pings the hubs until one answers and then waits for the routes to
// converge, within the recorder's deadline; a newer handover ends it.
func (m *mob) follow(id uint64) {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	check := time.NewTicker(convergeEvery)
	defer check.Stop()
	stop := time.After(followFor)
	pingUntil := time.Now().Add(pingFor)
	m.pingHubs()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-stop:
			return
		case <-ping.C:
			m.mu.Lock()
			again := m.ho.id == id && !m.ho.hubOK && time.Now().Before(pingUntil)
			m.mu.Unlock()
			if again {
				m.pingHubs()
			}
		case <-check.C:
			if !m.converged(id) {
				continue
			}
			return
		}
	}
}

// establishedSessions are the BGP neighbours established now; nil without
// BGP or when the speaker does not answer within a second.
func (m *mob) establishedSessions() map[netip.Addr]bool {
	sp := m.d.speaker
	if sp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(m.ctx, time.Second)
	defer cancel()
	ns, err := sp.Neighbors(ctx)
	if err != nil {
		return nil
	}
	out := map[netip.Addr]bool{}
	for _, n := range ns {
		if n.State == "established" {
			out[n.Address] = true
		}
	}
	return out
}

func (m *mob) pingHubs() {
	for _, p := range m.d.config().hubPeers() {
		m.send(netip.AddrPortFrom(overlayIPv4(p.addrs), m.port), p.key, &roampb.Signal{Body: &roampb.Signal_Ping{Ping: &roampb.Ping{}}})
	}
}

// hubAnswered: a hub answered a ping: the hub path is back.
func (m *mob) hubAnswered(hub wgtypes.Key) {
	now := time.Now()
	m.mu.Lock()
	ho := &m.ho
	if ho.id == 0 || ho.hubOK || ho.done {
		m.mu.Unlock()
		return
	}
	ho.hubOK = true
	id, seen := ho.id, ho.seen
	m.mu.Unlock()
	m.d.events.Mark(id, mobility.PhaseHubPath, "", now)
	m.log.Info("handover: hub path back", "event", id, "after", now.Sub(seen).Round(time.Millisecond))
}

// markDirect: a direct path selected a pair; if that is after the open
// handover began, the path is back.
func (m *mob) markDirect(name string, at time.Time) {
	m.mu.Lock()
	ho := &m.ho
	back, expected := ho.direct[name]
	if ho.id == 0 || ho.done || !expected || back || at.Before(ho.seen) {
		m.mu.Unlock()
		return
	}
	ho.direct[name] = true
	id, seen := ho.id, ho.seen
	m.mu.Unlock()
	m.d.events.Mark(id, mobility.PhaseDirectPath, name, at)
	m.log.Info("handover: direct path back", "event", id, "peer", name, "after", at.Sub(seen).Round(time.Millisecond))
}

// markPeer: the direct path to a peer that moved is back.
func (m *mob) markPeer(name string, at time.Time) {
	m.mu.Lock()
	ev, ok := m.peerEv[name]
	if !ok || at.Before(ev.seen) {
		m.mu.Unlock()
		return
	}
	delete(m.peerEv, name)
	m.mu.Unlock()
	m.d.events.Mark(ev.id, mobility.PhaseDirectPath, name, at)
	m.log.Info("peer moved: direct path back", "event", ev.id, "peer", name, "after", at.Sub(ev.seen).Round(time.Millisecond))
}

// converged reports whether handover id is complete: the hub answered,
// every direct path is back, and every BGP session is established. It
// marks the routes phase when it is.
func (m *mob) converged(id uint64) bool {
	m.mu.Lock()
	ho := m.ho
	if ho.id != id || ho.done {
		m.mu.Unlock()
		return true // superseded
	}
	ok := ho.hubOK
	for _, back := range ho.direct {
		ok = ok && back
	}
	m.mu.Unlock()
	if !ok {
		return false
	}
	if m.d.speaker != nil {
		now := m.establishedSessions()
		for a := range ho.sessions {
			if !now[a] {
				return false
			}
		}
	}
	now := time.Now()
	m.mu.Lock()
	if m.ho.id == id {
		m.ho.done = true
	}
	m.mu.Unlock()
	if m.d.speaker != nil {
		m.d.events.Mark(id, mobility.PhaseRoutes, "", now)
	}
	m.log.Info("handover: routes converged", "event", id, "after", now.Sub(ho.seen).Round(time.Millisecond))
	return true
}

// peerMoved records that a peer restarted ICE (its underlay changed): the
// event ends when the direct path to it is back.
func (m *mob) peerMoved(name, reason string) {
	now := time.Now()
	id := m.d.events.Begin(mobility.KindPeer, name, now, "peer restarted ICE: "+reason,
		[]mobility.Expect{{Phase: mobility.PhaseDirectPath, Peer: name}})
	m.mu.Lock()
	m.peerEv[name] = peerEvent{id: id, seen: now}
	m.mu.Unlock()
}

// peerEvent is an open event of a peer that moved.
type peerEvent struct {
	id   uint64
	seen time.Time
}

// linkChanged: the probes of a direct path went down: it is taken out of
// use (its overlay address and routes go through the hub until a new pair
// is selected) and ICE restarts from this side too (the peer may have
// moved). Runs on the prober's goroutine.
func (m *mob) linkChanged(l probe.Link) {
	if l.State == probe.Up {
		return
	}
	m.mu.Lock()
	found := false
	for _, dp := range m.directs {
		if dp.m.name == l.Target.Name {
			dp.down, dp.downAt, found = true, time.Now(), true
			dp.dir.Restart("probes down")
		}
	}
	m.mu.Unlock()
	if found {
		m.poke()
	}
}
