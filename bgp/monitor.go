package bgp

import (
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
)

// monitor follows GoBGP's neighbour state changes and the routes neighbours
// send (the adj-RIB-in before import policy), on one watcher goroutine so
// that both arrive in order. It logs state changes, logs each rejected route
// once, and remembers the TCP endpoints of established sessions so that a
// graceful stop can close them.
type monitor struct {
	log     *slog.Logger
	nbrs    *neighborTable
	rules   importRules
	own     func(netip.Prefix) bool // whether this node originates the prefix
	reasons *logAdapter             // GoBGP's last "Peer Down" reason per neighbour
	// overLimit is called (on its own goroutine) for a neighbour torn down
	// for sending more prefixes than its limit; nil: nothing.
	overLimit func(netip.Addr)

	// Owned by the watcher goroutine (GoBGP calls handle from one
	// goroutine per watch).
	state  map[netip.Addr]string
	known  map[netip.Addr]Neighbor // as last configured, for the events after its removal
	logged map[routeKey]bool       // rejections already logged

	mu       sync.Mutex
	sessions map[netip.Addr]session // established sessions
}

type routeKey struct {
	from   netip.Addr
	prefix netip.Prefix
}

// session is the pair of TCP endpoints of an established BGP session.
type session struct {
	local, remote netip.AddrPort
}

func newMonitor(log *slog.Logger, nbrs *neighborTable, rules importRules, own func(netip.Prefix) bool, reasons *logAdapter) *monitor {
	return &monitor{
		log: log, nbrs: nbrs, rules: rules, own: own, reasons: reasons,
		state:    make(map[netip.Addr]string),
		known:    make(map[netip.Addr]Neighbor),
		logged:   make(map[routeKey]bool),
		sessions: make(map[netip.Addr]session),
	}
}

// monitorRequest is the watch the monitor needs: neighbour states and every
// neighbour's routes before import policy.
func monitorRequest() *api.WatchEventRequest {
	return &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_ADJIN},
		}},
	}
}

// established returns the endpoints of the sessions that are up.
func (m *monitor) established() []session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.sessions))
}

func (m *monitor) handle(r *api.WatchEventResponse) {
	if ev := r.GetPeer(); ev != nil {
		m.peerEvent(ev)
		return
	}
	for _, p := range r.GetTable().GetPaths() {
		m.received(p)
	}
}

func (m *monitor) peerEvent(ev *api.WatchEventResponse_PeerEvent) {
	st := ev.GetPeer().GetState()
	addr, err := netip.ParseAddr(st.GetNeighborAddress())
	if err != nil {
		return
	}
	addr = addr.Unmap()
	to := strings.ToLower(st.GetSessionState().String())
	switch ev.GetType() {
	case api.WatchEventResponse_PeerEvent_INIT:
		m.state[addr] = to
		return
	case api.WatchEventResponse_PeerEvent_END_OF_INIT:
		return
	case api.WatchEventResponse_PeerEvent_UNKNOWN:
		// GoBGP's word, once its session has stopped, that a deleted
		// neighbour's established session ended. When SetNeighbors added
		// the neighbour again, the new one's first event may have said so
		// already; then this one is old news, and so is the down reason.
		if m.state[addr] != "established" {
			m.reasons.takeDownReason(addr.String())
			return
		}
	}
	from, ok := m.state[addr]
	if !ok {
		from = "idle" // GoBGP adds a neighbour in idle without an event
	}
	if from == to {
		return
	}
	m.state[addr] = to
	n, configured := m.nbrs.get(addr)
	if configured {
		m.known[addr] = n
	} else {
		n = m.known[addr] // removed by SetNeighbors: its session's end
	}
	if !configured && to == "idle" {
		delete(m.state, addr)
		delete(m.known, addr)
	}
	attrs := []any{"neighbor", addr, "kind", n.Kind, "description", n.Description, "state", from + " -> " + to}
	if from == "established" {
		if reason := m.reasons.takeDownReason(addr.String()); reason != "" {
			attrs = append(attrs, "reason", reason)
		}
	}
	m.log.Info("bgp: neighbor state", attrs...)

	switch {
	case to == "established":
		t := ev.GetPeer().GetTransport()
		local, err1 := netip.ParseAddr(t.GetLocalAddress())
		if err1 == nil && t.GetLocalPort() != 0 && t.GetRemotePort() != 0 {
			m.mu.Lock()
			m.sessions[addr] = session{
				local:  netip.AddrPortFrom(local.Unmap(), uint16(t.GetLocalPort())),
				remote: netip.AddrPortFrom(addr, uint16(t.GetRemotePort())),
			}
			m.mu.Unlock()
		}
	case from == "established":
		m.mu.Lock()
		delete(m.sessions, addr)
		m.mu.Unlock()
		for k := range m.logged {
			if k.from == addr {
				delete(m.logged, k)
			}
		}
		if st.GetAdminState() == api.PeerState_PFX_CT {
			m.log.Warn("bgp: neighbor sent more prefixes than its limit; its routes are dropped and the session stays down until the neighbor is enabled again",
				"neighbor", addr, "kind", n.Kind, "description", n.Description, "limit", n.MaxPrefixes)
			if m.overLimit != nil {
				go m.overLimit(addr)
			}
		}
	}
}

// received classifies a route a neighbour sent and logs a rejection once per
// (neighbour, prefix) until the neighbour withdraws it or the session ends.
func (m *monitor) received(p *api.Path) {
	from, err := netip.ParseAddr(p.GetNeighborIp())
	if err != nil {
		return
	}
	from = from.Unmap()
	// Only the prefix is needed: decoding the attributes as well
	// (routeFromPath) takes twice as long per path.
	prefix, err := pathPrefix(p)
	if err != nil {
		m.log.Warn("bgp: ignoring received route", "neighbor", from, "err", err)
		return
	}
	k := routeKey{from, prefix}
	if p.GetIsWithdraw() {
		delete(m.logged, k)
		return
	}
	n, _ := m.nbrs.get(from)
	rule := m.rules.rejectReason(prefix, n.Kind, m.own(prefix))
	if rule == "" {
		delete(m.logged, k)
		return
	}
	if m.logged[k] {
		return
	}
	m.logged[k] = true
	m.log.Warn("bgp: rejected route", "neighbor", from, "kind", n.Kind, "prefix", prefix, "rule", rule)
}
