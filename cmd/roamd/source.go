package main

import (
	"context"
	"time"

	"github.com/roamnet/roam/api/roampb"
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
