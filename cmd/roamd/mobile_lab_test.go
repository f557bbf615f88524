package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// Addresses of the mobile lab (testbed/labs/mobile.clab.yml).
const (
	mobMpod    = "10.244.1.2"        // the pod behind mobile
	mobPodNet  = "10.244.1.0/24"     // mobile's pod prefix
	mobPeerNet = "10.244.2.0/24"     // peer's pod prefix
	mobSite    = "198.51.100.128/25" // what BIRD originates
	mobWifiNAT = "203.0.113.21"      // wifi's public address
	mobLTENAT  = "203.0.113.22"      // lte's public address
)

// mobLab queries a deployed mobile lab: roamd's REST API in each node (the
// JSON roamctl -o json prints), and commands through roamlab.
type mobLab struct {
	t    testing.TB
	file string
	api  map[string]*http.Client
	// measure: a stream silent for longer than the test's bound is logged,
	// not an error (a benchmark reports the figures whatever they are).
	measure bool
}

func newMobLab(t testing.TB, file string) *mobLab {
	l := &mobLab{t: t, file: file, api: map[string]*http.Client{}}
	for _, n := range []string{"hub", "mobile", "peer"} {
		l.api[n] = labtest.HTTPClient("clab-mobile-" + n)
	}
	return l
}

func (l *mobLab) node(name string) node { return node{l.t, l.file, name} }

// get decodes GET path of roamd's API in node into v.
func (l *mobLab) get(node, path string, v any) error {
	resp, err := l.api[node].Get("http://127.0.0.1:7470" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s in %s: %s: %s", path, node, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// mobEvent is a handover event of GET /v1/events (roamctl events -o json).
type mobEvent struct {
	ID       uint64    `json:"id,string"`
	Kind     string    `json:"kind"`
	Peer     string    `json:"peer"`
	Seen     time.Time `json:"seen"`
	Summary  string    `json:"summary"`
	Done     bool      `json:"done"`
	TimedOut []string  `json:"timed_out"`
	Marks    []struct {
		Phase string    `json:"phase"`
		Peer  string    `json:"peer"`
		At    time.Time `json:"at"`
	} `json:"marks"`
}

// mark is when the event reached phase (with peer, for direct_path).
func (e mobEvent) mark(phase, peer string) (time.Time, bool) {
	for _, m := range e.Marks {
		if m.Phase == phase && m.Peer == peer {
			return m.At, true
		}
	}
	return time.Time{}, false
}

// events are node's events after id, and the highest id so far.
func (l *mobLab) events(node string, after uint64) ([]mobEvent, uint64, error) {
	var r struct {
		Events []mobEvent `json:"events"`
		LastID uint64     `json:"last_id,string"`
	}
	err := l.get(node, "/v1/events?after="+strconv.FormatUint(after, 10), &r)
	return r.Events, r.LastID, err
}

// mobPath is a path of GET /v1/paths (roamctl paths -o json).
type mobPath struct {
	Name            string `json:"name"`
	Type            string `json:"type"`
	IceState        string `json:"ice_state"`
	Endpoint        string `json:"endpoint"`
	LocalCandidate  string `json:"local_candidate"`
	RemoteCandidate string `json:"remote_candidate"`
}

func (l *mobLab) path(node, peer string) (mobPath, error) {
	var r struct {
		Paths []mobPath `json:"paths"`
	}
	if err := l.get(node, "/v1/paths", &r); err != nil {
		return mobPath{}, err
	}
	for _, p := range r.Paths {
		if p.Name == peer {
			return p, nil
		}
	}
	return mobPath{}, fmt.Errorf("%s lists no path to %s", node, peer)
}

func (l *mobLab) routes(node string) (routesJSON, error) {
	var r routesJSON
	err := l.get(node, "/v1/routes", &r)
	return r, err
}

// endpoint is node's WireGuard endpoint of peer (GET /v1/peers).
func (l *mobLab) endpoint(node, peer string) (string, error) {
	var r struct{ Peers []peerJSON }
	if err := l.get(node, "/v1/peers", &r); err != nil {
		return "", err
	}
	for _, p := range r.Peers {
		if p.Name == peer {
			return p.Endpoint, nil
		}
	}
	return "", fmt.Errorf("%s has no WireGuard peer %s", node, peer)
}

// followed reports (nil) whether the routes and paths follow mobile behind
// the NAT whose public address is nat: the hub routes mobile's pod to
// mobile and reaches mobile at nat; peer routes it over its direct path,
// whose endpoint is at nat; mobile routes peer's pod direct and BIRD's
// site through the hub.
func (l *mobLab) followed(nat string) error {
	checks := []struct {
		node, prefix, via string
	}{{"hub", mobPodNet, "mobile"}, {"peer", mobPodNet, "mobile"}, {"mobile", mobPeerNet, "peer"}, {"mobile", mobSite, "hub"}}
	for _, c := range checks {
		r, err := l.routes(c.node)
		if err != nil {
			return err
		}
		if got := r.installedVia(c.prefix); got != c.via {
			return fmt.Errorf("%s installs %s towards %q, want %q", c.node, c.prefix, got, c.via)
		}
	}
	ep, err := l.endpoint("hub", "mobile")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(ep, nat+":") {
		return fmt.Errorf("the hub's endpoint of mobile is %q, want %s", ep, nat)
	}
	p, err := l.path("peer", "mobile")
	if err != nil {
		return err
	}
	if p.Type != "direct" || !strings.HasPrefix(p.Endpoint, nat+":") {
		return fmt.Errorf("peer's path to mobile is %+v, want direct with its endpoint at %s", p, nat)
	}
	return nil
}

// hoPing pings an address from a lab node every 10 ms in the background
// (ping -D: each reply with the time it arrived), for at most a bounded
// time.
type hoPing struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	replies []time.Time
}

// startPing starts pinging dst from node for at most limit.
func startPing(t testing.TB, file, node, dst string, limit time.Duration) *hoPing {
	t.Helper()
	secs := strconv.Itoa(int(limit.Seconds()) + 1)
	cmd := exec.Command(labtest.Roamlab(t), "exec", "-t", file, "-n", node, "--",
		"ping", "-D", "-n", "-i", "0.01", "-W", "1", "-w", secs, dst)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ping %s from %s: %v", dst, node, err)
	}
	p := &hoPing{name: node + " -> " + dst, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if at, ok := replyTime(sc.Text()); ok {
				p.mu.Lock()
				p.replies = append(p.replies, at)
				p.mu.Unlock()
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// replyTime is when the reply on a line of ping -D arrived:
// "[1795433579.863711] 64 bytes from 10.244.1.2: icmp_seq=1 ttl=62 ...".
func replyTime(line string) (time.Time, bool) {
	end := strings.IndexByte(line, ']')
	if !strings.HasPrefix(line, "[") || end < 0 || !strings.Contains(line, "bytes from") {
		return time.Time{}, false
	}
	sec, frac, ok := strings.Cut(line[1:end], ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	us, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(frac) != 6 {
		return time.Time{}, false
	}
	return time.Unix(s, us*1000), true
}

// last is the time of the latest reply (zero if none).
func (p *hoPing) last() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.replies) == 0 {
		return time.Time{}
	}
	return p.replies[len(p.replies)-1]
}

// stop ends the stream (SIGINT, as a user's ^C, passed on by roamlab exec)
// and returns its replies.
func (p *hoPing) stop() []time.Time {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.replies)
}

// outage is the longest time a stream went without a reply from t0 (the
// move) until end: for each reply after t0, the time since the reply before
// it or since t0, whichever is later; and the silence after the last reply
// until end. resumed is false when that silence is the longest: replies had
// not come back by end.
func outage(replies []time.Time, t0, end time.Time) (gap time.Duration, resumed bool) {
	prev := t0
	for _, r := range replies {
		if r.Before(t0) {
			continue
		}
		if d := r.Sub(prev); d > gap {
			gap, resumed = d, true
		}
		prev = r
	}
	if d := end.Sub(prev); d > gap {
		return d, false
	}
	return gap, true
}

// hoMove is one move of mobile: what it does, and the NAT it is behind
// afterwards.
type hoMove struct {
	kind string // "wifi cut", "wifi repair", "renumber"
	desc string
	nat  string
	do   func()
}

func wifiCut(t testing.TB, file string) hoMove {
	return hoMove{"wifi cut", "cut wifi (eth1, carrier)", mobLTENAT, func() {
		labtest.MustRun(t, "link", "set", "-t", file, "-n", "mobile", "-i", "eth1", "--down", "--mode", "carrier")
	}}
}

func wifiRepair(t testing.TB, file string) hoMove {
	return hoMove{"wifi repair", "repair wifi", mobWifiNAT, func() {
		labtest.MustRun(t, "link", "set", "-t", file, "-n", "mobile", "-i", "eth1", "--up")
	}}
}

// preferUplink makes the other uplink the default while both keep working,
// as a phone that moves to a better network before the old one is gone:
// wifi's default route gets metric 200 (lte's 100 wins) or 0 again. The
// old path still answers until the new one is in use (make-before-break).
func preferUplink(t testing.TB, file string, lte bool) hoMove {
	from, to, nat, desc := "0", "200", mobLTENAT, "prefer lte, wifi still up"
	if !lte {
		from, to, nat, desc = "200", "0", mobWifiNAT, "prefer wifi again"
	}
	return hoMove{"uplink switch", desc, nat, func() {
		node{t, file, "mobile"}.mustRun("sh", "-c", "ip route del default via 192.0.2.1 dev eth1 metric "+from+
			" && ip route add default via 192.0.2.1 dev eth1 metric "+to)
	}}
}

// renumber gives mobile's wifi link a new address, as a new DHCP lease on
// the same network does: the old one goes (and with it the default route
// via wifi), the new one comes, and the default route is added again.
func renumber(t testing.TB, file, from, to string) hoMove {
	return hoMove{"renumber", "wifi address " + from + " -> " + to, mobWifiNAT, func() {
		node{t, file, "mobile"}.mustRun("sh", "-c", "ip addr del "+from+"/26 dev eth1 && ip addr add "+to+
			"/26 dev eth1 && ip route replace default via 192.0.2.1 dev eth1 metric 0")
	}}
}

// hoResult is what one move measured, every duration from the move's
// command: the phases of mobile's handover event, and the longest silence
// of each ping stream.
type hoResult struct {
	kind   string
	events int                      // new underlay events on mobile
	phase  map[string]time.Duration // hub_path, direct_path peer, routes
	gap    map[string]time.Duration // per ping stream
	follow time.Duration            // since when routes and paths followed mobile (followed) at every check; 0: not within the bound
}

// hoPhases are the marks every handover of mobile must reach.
var hoPhases = []struct{ phase, peer, label string }{
	{"hub_path", "", "hub_path"}, {"direct_path", "peer", "direct_path peer"}, {"routes", "", "routes"},
}

// handover makes the move with mpod pinged every 10 ms from ppod (over the
// direct path) and from bird (through the hub), and waits (bounded) until
// mobile's handover event is done, routes and paths follow it and both
// streams answer again. It fails the test where a user would see a fault.
func (l *mobLab) handover(mv hoMove) hoResult {
	t := l.t
	t.Helper()
	// limit bounds the wait for the event and the streams, followLimit
	// the wait for the routes and paths.
	const limit, followLimit = 12 * time.Second, 15 * time.Second
	_, before, err := l.events("mobile", 0)
	if err != nil {
		t.Fatalf("events of mobile: %v", err)
	}
	streams := []*hoPing{
		startPing(t, l.file, "ppod", mobMpod, limit+2*time.Second),
		startPing(t, l.file, "bird", mobMpod, limit+2*time.Second),
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if streams[0].last().After(start) && streams[1].last().After(start) {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("%s: no replies before the move (ppod %v, bird %v)", mv.desc, streams[0].last(), streams[1].last())
		}
	}
	time.Sleep(200 * time.Millisecond)

	t0 := time.Now()
	mv.do()
	res := hoResult{kind: mv.kind, phase: map[string]time.Duration{}, gap: map[string]time.Duration{}}
	var (
		ev        mobEvent
		evErr     error
		followErr = errors.New("not checked")
		since     time.Time // since when followErr has been nil at every check
		firstErr  error     // the first thing that did not follow once the event was done
	)
	follow := func() {
		followErr = l.followed(mv.nat)
		switch {
		case followErr != nil:
			since = time.Time{}
			if firstErr == nil {
				firstErr = followErr
			}
		case since.IsZero():
			since = time.Now()
		}
	}
	// The event and the streams, checking the routes as they go.
	for {
		now := time.Now()
		if !ev.Done {
			var evs []mobEvent
			if evs, _, evErr = l.events("mobile", before); evErr == nil {
				res.events = 0
				for _, e := range evs {
					if e.Kind == "underlay" {
						ev = e
						res.events++
					}
				}
			}
		}
		if ev.Done {
			follow()
		}
		// At least 3 s: the direct path's quality drops up to 2 s after a
		// move (probes lost in the move), and what that does to the
		// routes must show in the streams.
		back := now.Sub(t0) > 3*time.Second
		for _, s := range streams {
			back = back && now.Sub(s.last()) < 200*time.Millisecond
		}
		if (ev.Done && back) || now.Sub(t0) > limit {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now()
	for _, s := range streams {
		gap, resumed := outage(s.stop(), t0, end)
		res.gap[s.name] = gap
		if !resumed || gap > 5*time.Second {
			report := t.Errorf
			if l.measure {
				report = t.Logf
			}
			report("%s: %s went %v without a reply (resumed: %v)", mv.desc, s.name, gap.Round(time.Millisecond), resumed)
		}
	}
	// The routes and paths, if they do not follow yet.
	for followErr != nil && time.Since(t0) < followLimit {
		time.Sleep(100 * time.Millisecond)
		follow()
	}
	if followErr == nil {
		res.follow = since.Sub(t0)
	}

	switch {
	case evErr != nil:
		t.Errorf("%s: events of mobile: %v", mv.desc, evErr)
	case ev.ID == 0:
		t.Errorf("%s: no new underlay event on mobile within %v", mv.desc, limit)
	case !ev.Done || len(ev.TimedOut) > 0:
		t.Errorf("%s: mobile's event %d %q: done %v, timed out %v", mv.desc, ev.ID, ev.Summary, ev.Done, ev.TimedOut)
	}
	var marks []string
	for _, p := range hoPhases {
		at, ok := ev.mark(p.phase, p.peer)
		if !ok {
			if ev.ID != 0 {
				t.Errorf("%s: mobile's event %d %q has no %s mark: %+v", mv.desc, ev.ID, ev.Summary, p.label, ev.Marks)
			}
			continue
		}
		res.phase[p.label] = at.Sub(t0)
		marks = append(marks, fmt.Sprintf("%s %v (%v after seen)", p.label, at.Sub(t0).Round(time.Millisecond), at.Sub(ev.Seen).Round(time.Millisecond)))
	}
	followed := fmt.Sprintf("routes and paths followed after %v", res.follow.Round(time.Millisecond))
	switch {
	case followErr != nil:
		t.Errorf("%s: routes and paths do not follow mobile to %s within %v: %v", mv.desc, mv.nat, followLimit, followErr)
		followed = "routes and paths did not follow"
	case firstErr != nil:
		followed += " (before: " + firstErr.Error() + ")"
	}
	t.Logf("%s: seen %v after the move, event %d %q (%d new); %s; gaps ppod %v, bird %v; %s",
		mv.desc, ev.Seen.Sub(t0).Round(time.Millisecond), ev.ID, ev.Summary, res.events, strings.Join(marks, ", "),
		res.gap[streams[0].name].Round(time.Millisecond), res.gap[streams[1].name].Round(time.Millisecond), followed)
	return res
}

// mobLogs logs the end of roamd's log on mobile, peer and the hub if t
// failed (before the lab is destroyed: register it after Deploy).
func mobLogs(t testing.TB, file string) {
	if !t.Failed() {
		return
	}
	for _, n := range []string{"mobile", "peer", "hub"} {
		lines := strings.Split(strings.TrimSpace(node{t, file, n}.cmdLog()), "\n")
		t.Logf("end of roamd's log on %s:\n%s", n, strings.Join(lines[max(0, len(lines)-60):], "\n"))
	}
}

// waitMobileLab waits (bounded) until the lab has converged: the direct
// path between mobile and peer carries their pods' routes, BIRD's site is
// routed through the hub, and BIRD has installed the pod prefixes.
func waitMobileLab(t testing.TB, file string) {
	t.Helper()
	mobile, peer, hub := node{t, file, "mobile"}, node{t, file, "peer"}, node{t, file, "hub"}
	mobile.waitInstalled(mobPeerNet, "peer", 30*time.Second)
	peer.waitInstalled(mobPodNet, "mobile", 10*time.Second)
	hub.waitInstalled(mobPodNet, "mobile", 10*time.Second)
	mobile.waitInstalled(mobSite, "hub", 10*time.Second)
	bird := node{t, file, "bird"}
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		r := bird.mustRun("ip", "route", "show", "proto", "bird")
		if strings.Contains(r, mobPodNet+" via 198.51.100.1") && strings.Contains(r, mobPeerNet+" via 198.51.100.1") {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("bird has not installed the pod prefixes via the hub:\n%s\n%s", r,
				bird.run("birdc", "-s", "/run/bird.ctl", "show", "route").Stdout)
		}
	}
}

// TestMobileLab: mobile moves between its two uplinks, each behind its own
// NAT, while mpod is pinged every 10 ms from ppod (behind peer, over the
// direct path) and from bird (an external BGP router behind the hub). Five
// round trips wifi -> lte -> wifi (a carrier cut of wifi and its repair: 10
// moves), two round trips between the uplinks while both work (wifi's
// default route made worse than lte's and back: make-before-break), then
// four renumberings of the wifi link (192.0.2.2 -> .3 -> .2 -> .3 -> .2). After each move: both streams answer again within 5 s, mobile
// records a handover event with its hub_path, direct_path peer and routes
// marks, the hub routes mobile's pod to it at the NAT now in use, and
// peer's direct path to mobile has its endpoint there. The measured times
// are logged as a table at the end.
func TestMobileLab(t *testing.T) {
	labtest.BuildBinaries(t)
	file := labtest.LabFile("mobile")
	start := time.Now()
	labtest.Deploy(t, file)
	t.Cleanup(func() { mobLogs(t, file) })
	waitMobileLab(t, file)
	t.Logf("converged %v after the deploy", time.Since(start).Round(time.Millisecond))
	l := newMobLab(t, file)
	if err := l.followed(mobWifiNAT); err != nil {
		t.Fatalf("before any move: %v", err)
	}
	if p, _ := l.path("mobile", "peer"); p.Type != "direct" || p.IceState != "connected" {
		t.Errorf("mobile's path to peer: %+v: want direct, connected", p)
	}
	if got, ttl, out := l.node("ppod").pingTTL(mobMpod, 50); got < 49 || ttl != 62 {
		t.Errorf("ppod -> mpod over the direct path: %d/50 replies, ttl %d (want 62):\n%s", got, ttl, out)
	}
	if got, _, out := l.node("bird").pingTTL(mobMpod, 50); got < 49 {
		t.Errorf("bird -> mpod through the hub: %d/50 replies:\n%s", got, out)
	}

	// Every move is made even after one failed (each is bounded), unless
	// the routes stopped following mobile: the lab is broken then.
	moves := []hoMove{}
	for range 5 {
		moves = append(moves, wifiCut(t, file), wifiRepair(t, file))
	}
	for range 2 {
		moves = append(moves, preferUplink(t, file, true), preferUplink(t, file, false))
	}
	addrs := []string{"192.0.2.2", "192.0.2.3", "192.0.2.2", "192.0.2.3", "192.0.2.2"}
	for i := 0; i+1 < len(addrs); i++ {
		moves = append(moves, renumber(t, file, addrs[i], addrs[i+1]))
	}
	var results []hoResult
	for _, mv := range moves {
		r := l.handover(mv)
		results = append(results, r)
		if r.follow == 0 {
			break
		}
	}
	if got, ttl, out := l.node("ppod").pingTTL(mobMpod, 50); got < 49 || ttl != 62 {
		t.Errorf("after the moves, ppod -> mpod over the direct path: %d/50 replies, ttl %d (want 62):\n%s", got, ttl, out)
	}
	t.Logf("handover times after the move's command (%s):\n%s", time.Since(start).Round(time.Second), hoTable(results))
}

// hoTable is a table of p50 and max of every measure, per kind of move.
func hoTable(results []hoResult) string {
	var kinds []string
	for _, r := range results {
		if !slices.Contains(kinds, r.kind) {
			kinds = append(kinds, r.kind)
		}
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "MOVE\tN\tMEASURE\tP50\tMAX")
	for _, k := range kinds {
		for _, m := range hoMeasures(results) {
			ds := hoValues(results, k, m)
			if len(ds) == 0 {
				continue
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%v\t%v\n", k, len(ds), m, quantile(ds, 0.5), quantile(ds, 1))
		}
	}
	w.Flush()
	return b.String()
}

// hoMeasures are the names of the measures: the phases, the gaps of the
// streams, and when the routes and paths were seen following mobile.
func hoMeasures(results []hoResult) []string {
	var out []string
	for _, p := range hoPhases {
		out = append(out, p.label)
	}
	var gaps []string
	for _, r := range results {
		for name := range r.gap {
			if !slices.Contains(gaps, "gap "+name) {
				gaps = append(gaps, "gap "+name)
			}
		}
	}
	slices.Sort(gaps)
	return append(append(out, gaps...), "followed")
}

// hoValues are the values of measure m over the moves of kind k ("" any).
func hoValues(results []hoResult, k, m string) []time.Duration {
	var ds []time.Duration
	for _, r := range results {
		if k != "" && r.kind != k {
			continue
		}
		d, ok := r.phase[m]
		if g, isGap := r.gap[strings.TrimPrefix(m, "gap ")]; isGap && strings.HasPrefix(m, "gap ") {
			d, ok = g, true
		}
		if m == "followed" {
			d, ok = r.follow, r.follow > 0
		}
		if ok {
			ds = append(ds, d)
		}
	}
	return ds
}

// quantile is the q-quantile of ds by the nearest rank, rounded to the
// millisecond (0 for none).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
}
