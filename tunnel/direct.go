package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/roamnet/roam/api/roampb"
)

// Timers of the negotiation with one peer.
const (
	// gatherWait is how long an offer or answer waits for gathering to
	// complete; candidates found later follow in a candidates message.
	gatherWait = 300 * time.Millisecond
	// offerRetry is the first retransmission of an unanswered offer; it
	// doubles, and the offer is given up after offerGiveUp.
	offerRetry  = 400 * time.Millisecond
	offerGiveUp = 6 * time.Second
	// checkGiveUp is how long connectivity checks may run without a pair.
	checkGiveUp = 10 * time.Second
	// retryMin and retryMax bound the backoff between failed attempts: a
	// NAT that changes (or a firewall that opens) is noticed within
	// retryMax, without a network change on either end.
	retryMin = time.Second
	retryMax = 30 * time.Second
	// restartHold ignores a restart asked for within this time of the
	// last one: one underlay change reaches a node through several
	// signals (its own watcher, the peer's restart message, its probes).
	restartHold = 200 * time.Millisecond
)

// Path states (PathStatus.State).
const (
	PathNew          = "new"          // nothing tried yet
	PathChecking     = "checking"     // a session is gathering, signalling or checking (the old pair, if any, stays in use)
	PathConnected    = "connected"    // a pair is selected: WireGuard's endpoint is set to it
	PathDisconnected = "disconnected" // the selected pair stopped answering ICE keepalives
	PathFailed       = "failed"       // no pair works; retried after a backoff
)

// PathStatus is the state of the direct path to one peer.
type PathStatus struct {
	State     string
	Pair      Pair      // the pair in use (WireGuard's endpoint): kept through a restart until a new one is selected or the session fails; zero if none
	Since     time.Time // of State
	Selected  time.Time // when Pair was selected; zero if none
	Sessions  uint64    // ICE sessions started (1 + restarts)
	LastError string    // why the last session failed; "" if none did
	Retry     time.Time // when a failed path is tried again; zero if not scheduled
}

// DirectConfig configures the negotiation with one peer.
type DirectConfig struct {
	// ICE makes the sessions. Required.
	ICE *ICE
	// Controlling: this end drives the negotiation (offers, restarts); the
	// two ends must disagree (see Controlling).
	Controlling bool
	// Send sends a signal to the peer (sealed and relayed by hubs). It
	// must not block for long. Required.
	Send func(m *roampb.Signal) error
	// OnPath is called, on the Direct's goroutine, whenever PathStatus
	// changes state or pair, and for every pair selected. Required.
	OnPath func(PathStatus)
	// OnPeerRestart, if set, is called (on the Direct's goroutine) when the
	// peer restarts ICE on its own: its restart request (controlling end),
	// or a new offer while the path is up that this end did not ask for
	// (controlled end). That is how a peer's move shows here.
	OnPeerRestart func(reason string)
	// Log; nil discards. Add the peer's name to it.
	Log *slog.Logger
}

// Restart reasons that are not a move: the first session and the retries.
const (
	ReasonStart = "start"
	ReasonRetry = "retry"
)

// Direct negotiates the direct path to one peer: ICE sessions over the
// signalling, retries with backoff, restarts on request. It never touches
// WireGuard: OnPath tells the caller which endpoint to set. While a new
// session runs after a restart, the old pair stays in use (OnPath is not
// told of a loss), so WireGuard keeps the old path as long as it works.
type Direct struct {
	cfg DirectConfig
	log *slog.Logger

	signals  chan *roampb.Signal
	restarts chan string
	events   chan sessionEvent

	mu     sync.Mutex
	status PathStatus // guarded by mu; written only by run
}

// NewDirect validates cfg; Run starts it.
func NewDirect(cfg DirectConfig) (*Direct, error) {
	if cfg.ICE == nil || cfg.Send == nil || cfg.OnPath == nil {
		return nil, errors.New("tunnel: direct: config needs ICE, Send and OnPath")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Direct{
		cfg: cfg, log: log,
		signals:  make(chan *roampb.Signal, 32),
		restarts: make(chan string, 1),
		events:   make(chan sessionEvent, 64),
		status:   PathStatus{State: PathNew, Since: time.Now()},
	}, nil
}

// Handle passes a signal from the peer (already opened and checked). It
// never blocks: when the queue is full the signal is dropped (the sender
// retransmits).
func (d *Direct) Handle(m *roampb.Signal) {
	select {
	case d.signals <- m:
	default:
		d.log.Debug("direct: signal queue full: dropped", "session", m.GetSession())
	}
}

// Restart asks for a new ICE session at once, bypassing the backoff: this
// node's underlay changed, or the probes say the path is down. It never
// blocks; requests coalesce.
func (d *Direct) Restart(reason string) {
	select {
	case d.restarts <- reason:
	default:
	}
}

// Status is the path's state now.
func (d *Direct) Status() PathStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// sessionEvent is a callback of the session of generation gen.
type sessionEvent struct {
	gen      uint64
	cand     string // a local candidate
	gathered bool   // gathering is complete
	state    string // a new connection state
	pair     *Pair  // a selected pair
}

// sessionEvents are the callbacks of the session of generation gen: they
// queue events for run.
func (d *Direct) sessionEvents(gen uint64) SessionEvents {
	post := func(ev sessionEvent) {
		ev.gen = gen
		select {
		case d.events <- ev:
		default:
			d.log.Debug("direct path: session event queue full: dropped", "state", ev.state)
		}
	}
	return SessionEvents{
		Candidate: func(c string) { post(sessionEvent{cand: c, gathered: c == ""}) },
		State:     func(st string) { post(sessionEvent{state: st}) },
		Selected:  func(p Pair) { post(sessionEvent{pair: &p}) },
	}
}

func (d *Direct) setStatus(f func(*PathStatus)) {
	d.mu.Lock()
	old := d.status
	f(&d.status)
	st := d.status
	d.mu.Unlock()
	if st.State != old.State || st.Pair != old.Pair || st.Since != old.Since && st.State == PathConnected {
		d.cfg.OnPath(st)
	}
}

func (d *Direct) send(m *roampb.Signal) {
	if err := d.cfg.Send(m); err != nil {
		// A send fails when no hub takes it (the overlay is down: the
		// retransmissions cover that) or when the signal cannot be sealed
		// (too large, malformed), which no retry mends: say so.
		level := slog.LevelDebug
		if !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ENETUNREACH) {
			level = slog.LevelInfo
		}
		d.log.Log(context.Background(), level, "direct path: signal not sent", "err", err)
	}
}
