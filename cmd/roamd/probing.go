package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/roampb"
	"github.com/roamnet/roam/bgp"
	"github.com/roamnet/roam/probe"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var errProbeOff = fmt.Errorf("probe.enabled is false in the configuration: %w", api.ErrDisabled)

// startProbing builds the reflector on this node's overlay address and the
// prober of its peers; with BGP on, link changes go to the speaker through
// a qualityPump. It returns what must run.
func (d *daemon) startProbing(cfg *Config) ([]func(context.Context) error, error) {
	if !*cfg.Probe.Enabled {
		return nil, nil
	}
	self := probeAddr(cfg.addrs)
	refl, err := probe.NewReflector(probe.ReflectorConfig{Addr: netip.AddrPortFrom(self, uint16(cfg.Probe.Port))}, d.log)
	if err != nil {
		return nil, err
	}
	pc := probe.ProberConfig{Local: netip.AddrPortFrom(self, 0)}
	runs := []func(context.Context) error{refl.Run}
	if d.speaker != nil {
		d.quality = newQualityPump(d.speaker.SetQuality, qualityEvery, d.log)
		runs = append(runs, d.quality.Run)
	}
	pc.OnChange = d.linkChanged
	prober, err := probe.NewProber(pc, d.log)
	if err != nil {
		return nil, err
	}
	if err := prober.SetTargets(probeTargets(cfg)); err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	d.prober = prober
	return append(runs, prober.Run), nil
}

// linkChanged passes a link's change to BGP and to the direct paths (a
// direct path whose probes go down restarts ICE). It runs on the prober's
// goroutine: it must not block.
//
// A direct path found by ICE gives BGP its state only, never a cost: its
// routes keep local-pref 100 while it is up. The two ends measure the
// tunnel apart, and if one end preferred the hub while the other kept the
// direct path, WireGuard's cryptokey routing would drop the hub's packets
// from prefixes that belong to the direct peer (a lab showed 7-10 s of
// loss after a move cost two probes on one side). Up and down are decided
// within a few hundred milliseconds of each other on both ends.
func (d *daemon) linkChanged(l probe.Link) {
	if d.mob != nil && d.mob.isDirect(l.Target.Name) && l.Cost != 0 {
		l.Cost = probe.PerfectCost
	}
	if d.quality != nil {
		d.quality.offer(l)
	}
	if d.mob != nil {
		d.mob.linkChanged(l)
	}
}

// Links implements api.Source: the probed quality of every tunnel.
func (d *daemon) Links(ctx context.Context) (*roampb.ListLinksResponse, error) {
	if d.prober == nil {
		return nil, errProbeOff
	}
	cfg := d.effective(d.config())
	keys := make(map[string]string, len(cfg.peers))
	for _, p := range cfg.peers {
		keys[p.name] = p.key.String()
	}
	out := &roampb.ListLinksResponse{}
	for _, l := range d.prober.Links() {
		m := linkMessage(l, keys[l.Target.Name], d.speaker != nil)
		if m.LocalPref != 0 && d.mob != nil && d.mob.isDirect(l.Target.Name) {
			m.LocalPref = 100 // see linkChanged
		}
		out.Links = append(out.Links, m)
	}
	return out, nil
}

// linkMessage is the API's view of l; withBGP says whether routes learned
// over the tunnel get a local-pref from its cost.
func linkMessage(l probe.Link, key string, withBGP bool) *roampb.Link {
	m := &roampb.Link{
		Name:           l.Target.Name,
		PublicKey:      key,
		Address:        l.Target.Addr.Addr().String(),
		Profile:        l.Target.Profile,
		Interval:       durationpb.New(l.Target.Config.Interval),
		State:          l.State.String(),
		Flaps:          l.Flaps,
		Transitions:    l.Transitions,
		Loss:           l.Loss,
		LossDirections: l.Directions,
		Cost:           uint32(l.Cost),
		ProbesSent:     l.Sent,
		Replies:        l.Replies,
		Misses:         uint32(l.Misses),
		DownAfter:      uint32(l.DownAfter),
		HoldDown:       durationpb.New(l.HoldDown),
	}
	if m.Profile == "" {
		m.Profile = "custom"
	}
	if !l.Since.IsZero() {
		m.Since = timestamppb.New(l.Since)
	}
	if l.RTT.Samples > 0 {
		m.Rtt, m.Rttvar, m.Jitter = durationpb.New(l.RTT.SRTT), durationpb.New(l.RTT.RTTVar), durationpb.New(l.Jitter)
	}
	if l.Directions {
		m.LossForward, m.LossBackward = l.Forward, l.Backward
	}
	if withBGP && l.State == probe.Up {
		m.LocalPref = bgp.LocalPref(uint16(l.Cost))
	}
	return m
}

// qualityEvery is the least time between two cost changes of one peer sent
// to BGP (each re-evaluates the routes of its session both ways); a peer
// going down or up is sent at once.
const qualityEvery = 2 * time.Second
