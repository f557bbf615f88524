package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/logging"
	"github.com/pion/stun"
	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
)

// ICE timers. pion's defaults (checks every 200 ms, nomination of a
// server-reflexive pair held 500 ms, keepalive 2 s, disconnected after 5 s,
// failed 25 s later) are made for media sessions that start once; a moving
// node wants the first pair that works, at once, and to hear early that it
// stopped working. Keepalives go every second, so that three in a row
// must be lost before a pair is disconnected (with 2 s, one late pair of
// keepalives on a loaded machine did it). The WireGuard path itself is
// judged by the link probes.
const (
	iceCheckInterval       = 50 * time.Millisecond
	iceKeepalive           = time.Second
	iceDisconnectedTimeout = 4 * time.Second
	iceFailedTimeout       = 4 * time.Second
	// stunMappingTTL is how long a server-reflexive address learned from a
	// STUN server is reused by the next session: short, because after an
	// underlay change the old mapping is wrong.
	stunMappingTTL = 500 * time.Millisecond
)

// ICEConfig configures the ICE agents of a node.
type ICEConfig struct {
	// Conn carries the STUN messages of every agent: a STUNConn on
	// WireGuard's port in roamd, so that the pairs ICE finds are pairs of
	// WireGuard's own socket; any UDP conn in tests. Required. Closing the
	// ICE closes it.
	Conn net.PacketConn
	// Net is pion's network: nil for the OS, a vnet.Net in tests.
	Net transport.Net
	// HostAddrs returns this node's underlay addresses now: its host
	// candidates (never the WireGuard device's or pod addresses). Called
	// at the start of every session. Required.
	HostAddrs func() []netip.Addr
	// STUN returns the STUN servers (the hubs' WireGuard endpoints) that
	// give server-reflexive candidates. Called at the start of every
	// session; nil or empty: host candidates only.
	STUN func() []netip.AddrPort
	// Log; nil discards.
	Log *slog.Logger
}

// ICE makes the ICE agents of one node. All of them share Conn through one
// pion UDP mux, which hands each incoming check to the agent whose ufrag
// it names.
type ICE struct {
	cfg   ICEConfig
	log   *slog.Logger
	mux   *ice.UniversalUDPMuxDefault
	host  *hostMux
	srflx *srflxMux
	port  int
	logf  logging.LoggerFactory
}

// NewICE validates cfg and starts the mux's reader on cfg.Conn.
func NewICE(cfg ICEConfig) (*ICE, error) {
	if cfg.Conn == nil {
		return nil, errors.New("tunnel: ice: config: conn is missing")
	}
	if cfg.HostAddrs == nil {
		return nil, errors.New("tunnel: ice: config: host addresses are missing")
	}
	ua, ok := cfg.Conn.LocalAddr().(*net.UDPAddr)
	if !ok || ua.Port == 0 {
		return nil, fmt.Errorf("tunnel: ice: config: conn: local address %v is not a bound UDP address", cfg.Conn.LocalAddr())
	}
	if cfg.Net == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("tunnel: ice: %w", err)
		}
		cfg.Net = n
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "tunnel")
	logf := &pionLogs{log: log}
	mux := ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{
		Logger:                logf.NewLogger("ice-mux"),
		UDPConn:               cfg.Conn,
		XORMappedAddrCacheTTL: stunMappingTTL,
		Net:                   cfg.Net,
	})
	x := &ICE{cfg: cfg, log: log, mux: mux, port: ua.Port, logf: logf}
	x.host = &hostMux{UniversalUDPMuxDefault: mux, x: x}
	x.srflx = &srflxMux{UniversalUDPMuxDefault: mux, x: x}
	return x, nil
}

// Close closes every agent's mux connection and Conn.
func (x *ICE) Close() error { return x.mux.Close() }

// Port is the UDP port of Conn: the port of every candidate.
func (x *ICE) Port() int { return x.port }

// hostAddrs are the host candidate addresses now, on the mux's port.
func (x *ICE) hostAddrs() []net.Addr {
	var out []net.Addr
	for _, a := range x.cfg.HostAddrs() {
		a = a.Unmap()
		if !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(x.port))))
	}
	return out
}

// hostMux is the mux as the agents' host gathering sees it: its listen
// addresses are the node's underlay addresses at the time of the call
// (pion's own list is taken once, from every interface, the WireGuard
// device's included).
type hostMux struct {
	*ice.UniversalUDPMuxDefault
	x *ICE
}

func (m *hostMux) GetListenAddresses() []net.Addr { return m.x.hostAddrs() }

// srflxMux is the mux as server-reflexive gathering sees it: one listen
// address, so that each STUN server is asked once per session (pion asks
// once per listen address, and every address here is the same socket).
type srflxMux struct {
	*ice.UniversalUDPMuxDefault
	x *ICE
}

func (m *srflxMux) GetListenAddresses() []net.Addr {
	addrs := m.x.hostAddrs()
	if len(addrs) == 0 {
		return nil
	}
	return addrs[:1]
}

// Candidate types as Session reports them.
const (
	CandidateHost  = "host"
	CandidateSrflx = "srflx"
	CandidatePrflx = "prflx"
)

// Pair is the candidate pair an agent selected: WireGuard's endpoint for
// the peer is Remote.
type Pair struct {
	LocalType, RemoteType string
	Local, Remote         netip.AddrPort
}

func (p Pair) String() string {
	return fmt.Sprintf("%s %s -> %s %s", p.LocalType, p.Local, p.RemoteType, p.Remote)
}

// SessionEvents are the callbacks of one Session; they run on pion's
// goroutines and must not block. Any may be nil.
type SessionEvents struct {
	// Candidate: a local candidate was gathered (its SDP attribute value);
	// "" once gathering is complete.
	Candidate func(c string)
	// State: the agent's connection state changed ("checking",
	// "connected", "disconnected", "failed", "closed", ...).
	State func(state string)
	// Selected: the agent selected a pair.
	Selected func(p Pair)
}

// Session is one ICE agent: one negotiation with one peer, with fresh
// credentials. A restart is a new Session.
type Session struct {
	agent       *ice.Agent
	controlling bool
	ufrag, pwd  string
	cancel      context.CancelFunc
	ctx         context.Context
	done        chan struct{} // closed when the checks goroutine ends

	mu      sync.Mutex
	started bool
}

// NewSession creates an agent and starts gathering its candidates; ev
// reports them. controlling must be the opposite on the two ends (see
// Controlling).
func (x *ICE) NewSession(controlling bool, ev SessionEvents) (*Session, error) {
	var urls []*stun.URI
	if x.cfg.STUN != nil {
		for _, s := range x.cfg.STUN() {
			if !s.IsValid() {
				continue
			}
			urls = append(urls, &stun.URI{Scheme: stun.SchemeTypeSTUN, Host: s.Addr().Unmap().String(), Port: int(s.Port()), Proto: stun.ProtoTypeUDP})
		}
	}
	zero := time.Duration(0)
	check, keep, disc, fail := iceCheckInterval, iceKeepalive, iceDisconnectedTimeout, iceFailedTimeout
	agent, err := ice.NewAgent(&ice.AgentConfig{
		Urls:                   urls,
		NetworkTypes:           []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6},
		CandidateTypes:         []ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive},
		UDPMux:                 x.host,
		UDPMuxSrflx:            x.srflx,
		Net:                    x.cfg.Net,
		MulticastDNSMode:       ice.MulticastDNSModeDisabled,
		CheckInterval:          &check,
		KeepaliveInterval:      &keep,
		DisconnectedTimeout:    &disc,
		FailedTimeout:          &fail,
		HostAcceptanceMinWait:  &zero,
		SrflxAcceptanceMinWait: &zero,
		PrflxAcceptanceMinWait: &zero,
		LoggerFactory:          x.logf,
	})
	if err != nil {
		return nil, fmt.Errorf("tunnel: ice: new agent: %w", err)
	}
	ufrag, pwd, err := agent.GetLocalUserCredentials()
	if err != nil {
		_ = agent.Close()
		return nil, fmt.Errorf("tunnel: ice: credentials: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{agent: agent, controlling: controlling, ufrag: ufrag, pwd: pwd, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	if err := s.handlers(ev); err != nil {
		s.Close()
		return nil, err
	}
	if err := agent.GatherCandidates(); err != nil {
		s.Close()
		return nil, fmt.Errorf("tunnel: ice: gather: %w", err)
	}
	return s, nil
}

func (s *Session) handlers(ev SessionEvents) error {
	if err := s.agent.OnCandidate(func(c ice.Candidate) {
		if ev.Candidate == nil {
			return
		}
		if c == nil {
			ev.Candidate("")
			return
		}
		ev.Candidate(c.Marshal())
	}); err != nil {
		return fmt.Errorf("tunnel: ice: %w", err)
	}
	if err := s.agent.OnConnectionStateChange(func(st ice.ConnectionState) {
		if ev.State != nil {
			ev.State(strings.ToLower(st.String()))
		}
	}); err != nil {
		return fmt.Errorf("tunnel: ice: %w", err)
	}
	if err := s.agent.OnSelectedCandidatePairChange(func(l, r ice.Candidate) {
		if ev.Selected != nil {
			ev.Selected(Pair{
				LocalType: l.Type().String(), RemoteType: r.Type().String(),
				Local: candAddr(l), Remote: candAddr(r),
			})
		}
	}); err != nil {
		return fmt.Errorf("tunnel: ice: %w", err)
	}
	return nil
}

func candAddr(c ice.Candidate) netip.AddrPort {
	a, err := netip.ParseAddr(c.Address())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(c.Port()))
}

// Credentials are this session's ufrag and password, for the offer or
// answer.
func (s *Session) Credentials() (ufrag, pwd string) { return s.ufrag, s.pwd }

// Controlling reports whether this session is the controlling agent.
func (s *Session) Controlling() bool { return s.controlling }

// AddRemote adds the peer's candidates (SDP attribute values). A malformed
// one is an error naming it; the others are still added.
func (s *Session) AddRemote(cands []string) error {
	var errs []error
	for _, raw := range cands {
		c, err := ice.UnmarshalCandidate(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("tunnel: ice: remote candidate %q: %w", raw, err))
			continue
		}
		if err := s.agent.AddRemoteCandidate(c); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: ice: remote candidate %q: %w", raw, err))
		}
	}
	return errors.Join(errs...)
}

// Start begins the connectivity checks with the peer's credentials; the
// result comes through SessionEvents. Starting twice is a no-op.
func (s *Session) Start(remoteUfrag, remotePwd string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	go func() {
		defer close(s.done)
		var err error
		if s.controlling {
			_, err = s.agent.Dial(s.ctx, remoteUfrag, remotePwd)
		} else {
			_, err = s.agent.Accept(s.ctx, remoteUfrag, remotePwd)
		}
		_ = err // the outcome is reported through the state callback
	}()
}

// Close stops the agent and waits for its checks to end.
func (s *Session) Close() {
	s.cancel()
	// GracefulClose also waits for the agent's own goroutines; Close is
	// never called from one of its callbacks.
	_ = s.agent.GracefulClose()
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		<-s.done
	}
}

// Controlling decides which of two nodes controls ICE: the one whose
// public key is greater, so both ends agree without a message.
func Controlling(self, peer [32]byte) bool {
	for i := range self {
		if self[i] != peer[i] {
			return self[i] > peer[i]
		}
	}
	return false
}
