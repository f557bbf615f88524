package tunnel

import (
	"errors"
	"fmt"
	"net"
)

// Apply makes the device match s, the whole desired state, sending only the
// differences: applying the same State again changes nothing (and so never
// causes a new handshake). It reads the live device first, so changes made
// behind its back (wg set, ip addr) are corrected too; an endpoint that
// WireGuard roaming moved is kept unless s changes the endpoint (see Peer).
// Every part is attempted; the errors of those that failed are returned
// together, and the next Apply retries them.
func (d *Device) Apply(s State) error {
	want, err := s.normalized()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("tunnel: apply to %s: %w", d.name, net.ErrClosed)
	}
	errs := []error{d.applyWireGuardLocked(want)}
	errs = append(errs, d.applyLinkLocked(want)...)
	errs = append(errs, d.applyRoutesLocked(want)...)
	return errors.Join(errs...)
}

// applyWireGuardLocked sends the WireGuard part of want: key, port, peers.
func (d *Device) applyWireGuardLocked(want State) error {
	live, err := d.wg.Device(d.name)
	if err != nil {
		return fmt.Errorf("tunnel: apply to %s: read wireguard device: %w", d.name, err)
	}
	cfg, changes := wgChanges(live, d.last, want, d.now())
	if len(changes) > 0 {
		if err := d.wg.ConfigureDevice(d.name, cfg); err != nil {
			return fmt.Errorf("tunnel: apply to %s: configure wireguard: %w", d.name, err)
		}
		for _, c := range changes {
			d.log.Info("wireguard changed", "change", c)
		}
	}
	d.last = &want
	return nil
}

// applyLinkLocked sets the MTU and addresses and brings the link (and a
// userspace engine) up.
func (d *Device) applyLinkLocked(want State) []error {
	st, err := d.link.Link(d.name)
	if err != nil {
		return []error{fmt.Errorf("tunnel: apply to %s: read link: %w", d.name, err)}
	}
	var errs []error
	if st.MTU != d.mtu {
		if err := d.link.SetMTU(d.name, d.mtu); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: apply to %s: set mtu %d: %w", d.name, d.mtu, err))
		} else {
			d.log.Info("link: mtu", "old", st.MTU, "new", d.mtu)
		}
	}
	have, err := d.link.Addrs(d.name)
	if err != nil {
		errs = append(errs, fmt.Errorf("tunnel: apply to %s: list addresses: %w", d.name, err))
	} else {
		add, del := addrChanges(have, want.Addresses)
		for _, a := range del {
			if err := d.link.DelAddr(d.name, a); err != nil {
				errs = append(errs, fmt.Errorf("tunnel: apply to %s: delete address %s: %w", d.name, a, err))
				continue
			}
			d.log.Info("link: address removed", "addr", a)
		}
		for _, a := range add {
			if err := d.link.AddAddr(d.name, a); err != nil {
				errs = append(errs, fmt.Errorf("tunnel: apply to %s: add address %s: %w", d.name, a, err))
				continue
			}
			d.log.Info("link: address added", "addr", a)
		}
	}
	if !st.Up {
		if err := d.link.SetUp(d.name); err != nil {
			return append(errs, fmt.Errorf("tunnel: apply to %s: set link up: %w", d.name, err))
		}
		d.log.Info("link: down -> up")
	}
	if d.eng != nil {
		// wireguard-go would also come up when it notices the link event;
		// doing it here means the UDP port is open when Apply returns.
		// A no-op when it is up already.
		if err := d.eng.Up(); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: apply to %s: bring wireguard-go up: %w", d.name, err))
		}
	}
	return errs
}

// applyRoutesLocked makes the roam routes via the device those of want's
// allowed IPs.
func (d *Device) applyRoutesLocked(want State) []error {
	have, err := d.link.Routes(d.name)
	if err != nil {
		return []error{fmt.Errorf("tunnel: apply to %s: list routes: %w", d.name, err)}
	}
	var errs []error
	need := wantRoutes(want.Peers)
	add, del := routeChanges(have, need)
	for _, r := range del {
		if err := d.link.DelRoute(d.name, r); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: apply to %s: delete route %s: %w", d.name, r, err))
			continue
		}
		d.log.Info("route removed", "dst", r)
	}
	for _, r := range add {
		if err := d.link.AddRoute(d.name, r); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: apply to %s: add route %s: %w", d.name, r, err))
			continue
		}
		d.log.Info("route added", "dst", r)
	}
	return errs
}
