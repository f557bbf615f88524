package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/api/roampb"
	"github.com/roamnet/roam/bgp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Status implements api.Source.
func (d *daemon) Status(ctx context.Context) (*roampb.Status, error) {
	cfg := d.config()
	s := &roampb.Status{
		Node:       cfg.Node,
		Version:    version(),
		Role:       cfg.Role,
		Uptime:     durationpb.New(time.Since(d.started).Truncate(time.Second)),
		Started:    timestamppb.New(d.started),
		PublicKey:  d.key.PublicKey().String(),
		ListenPort: uint32(cfg.ListenPort),
		Device:     d.dev.Name(),
		TunnelMode: d.dev.Mode(),
	}
	for _, a := range cfg.addrs {
		s.OverlayAddresses = append(s.OverlayAddresses, a.String())
	}
	return s, nil
}

// Peers implements api.Source: the live state of every WireGuard peer.
func (d *daemon) Peers(ctx context.Context) (*roampb.ListPeersResponse, error) {
	peers, err := d.dev.Peers()
	if err != nil {
		return nil, err
	}
	out := &roampb.ListPeersResponse{}
	for _, p := range peers {
		rp := &roampb.Peer{
			Name:      p.Name,
			PublicKey: p.PublicKey.String(),
			RxBytes:   p.RxBytes,
			TxBytes:   p.TxBytes,
		}
		if p.Endpoint.IsValid() {
			rp.Endpoint = p.Endpoint.String()
		}
		if !p.LastHandshake.IsZero() {
			rp.LastHandshake = timestamppb.New(p.LastHandshake)
		}
		if p.PersistentKeepalive > 0 {
			rp.PersistentKeepalive = durationpb.New(p.PersistentKeepalive)
		}
		for _, a := range p.AllowedIPs {
			rp.AllowedIps = append(rp.AllowedIps, a.String())
		}
		out.Peers = append(out.Peers, rp)
	}
	return out, nil
}

// errBGPOff answers the BGP calls on a node without BGP.
var errBGPOff = fmt.Errorf("no bgp section in the configuration: %w", api.ErrDisabled)

// BGPNeighbors implements api.Source.
func (d *daemon) BGPNeighbors(ctx context.Context) (*roampb.ListBgpNeighborsResponse, error) {
	if d.speaker == nil {
		return nil, errBGPOff
	}
	ns, err := d.speaker.Neighbors(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	out := &roampb.ListBgpNeighborsResponse{}
	for _, n := range ns {
		bn := &roampb.BgpNeighbor{
			Address: n.Address.String(), Asn: n.ASN, Description: n.Description, Kind: n.Kind.String(),
			State: n.State, Received: n.Received, Accepted: n.Accepted, Advertised: n.Advertised,
		}
		if n.Uptime > 0 {
			bn.Uptime = durationpb.New(n.Uptime)
		}
		out.Neighbors = append(out.Neighbors, bn)
	}
	return out, nil
}

// Routes implements api.Source: what this node originates, every path it
// learned (with the best flag), and where the best ones are installed.
func (d *daemon) Routes(ctx context.Context) (*roampb.ListRoutesResponse, error) {
	if d.speaker == nil {
		return nil, errBGPOff
	}
	rs, err := d.speaker.Routes(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	names := d.neighborNames()
	out := &roampb.ListRoutesResponse{}
	for _, r := range rs {
		pr := &roampb.Route{Prefix: r.Prefix.String(), AsPath: r.ASPath, LocalPref: r.LocalPref, Med: r.MED,
			Best: r.Best, Stale: r.Stale}
		if r.NextHop.IsValid() {
			pr.NextHop = r.NextHop.String()
		}
		if r.Originated {
			out.Originated = append(out.Originated, pr)
			continue
		}
		pr.From, pr.FromName = r.From.String(), names[r.From]
		out.Learned = append(out.Learned, pr)
	}
	cfg := d.config()
	for _, r := range d.fibs.Installed() {
		ir := &roampb.InstalledRoute{Prefix: r.Prefix.String(), Peer: r.Peer, Stale: r.Stale, Table: uint32(cfg.BGP.Table)}
		if r.Peer != "" {
			ir.Device = d.dev.Name()
		} else {
			ir.Gateway = r.Gateway.String()
		}
		out.Installed = append(out.Installed, ir)
	}
	return out, nil
}

// neighborNames maps session addresses to peer names and neighbour
// descriptions.
func (d *daemon) neighborNames() map[netip.Addr]string {
	cfg := d.config()
	m := map[netip.Addr]string{}
	for _, p := range cfg.peers {
		for _, a := range p.addrs {
			m[a.Addr()] = p.name
		}
	}
	for _, n := range cfg.BGP.neighbors {
		m[n.addr] = n.Description
	}
	return m
}

// Services implements api.Source.
func (d *daemon) Services(ctx context.Context) (*roampb.ListServicesResponse, error) {
	if d.services == nil {
		return nil, errBGPOff
	}
	out := &roampb.ListServicesResponse{}
	for _, p := range d.services.List() {
		out.Services = append(out.Services, &roampb.Service{Prefix: p.String()})
	}
	return out, nil
}

// AddService implements api.Source: announce p now and after restarts.
func (d *daemon) AddService(ctx context.Context, p netip.Prefix) (*roampb.Service, error) {
	if d.services == nil {
		return nil, errBGPOff
	}
	added, err := d.services.Add(ctx, p)
	if err != nil {
		return nil, err
	}
	if added {
		d.log.Info("service added", "prefix", p)
	}
	return &roampb.Service{Prefix: p.String()}, nil
}

// DeleteService implements api.Source.
func (d *daemon) DeleteService(ctx context.Context, p netip.Prefix) error {
	if d.services == nil {
		return errBGPOff
	}
	if err := d.services.Delete(ctx, p); err != nil {
		return err
	}
	d.log.Info("service removed", "prefix", p)
	return nil
}

// unavailable marks a speaker that is not running (starting or stopping).
func unavailable(err error) error {
	if errors.Is(err, bgp.ErrNotRunning) {
		return fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	}
	return err
}
