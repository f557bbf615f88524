package main

import (
	"context"
	"fmt"
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// status prints the node's status, as a list or as the API's JSON.
func (c *cli) status(ctx context.Context, cl *client, raw bool) error {
	st, body, err := cl.status(ctx)
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	return formatStatus(c.stdout, st, c.now())
}

// peers prints the peers, as a table or as the API's JSON.
func (c *cli) peers(ctx context.Context, cl *client, raw bool) error {
	resp, body, err := cl.peers(ctx)
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	return formatPeers(c.stdout, resp.GetPeers(), c.now())
}

// links prints the probed links to the peers, as a table or as the API's
// JSON.
func (c *cli) links(ctx context.Context, cl *client, raw bool) error {
	resp, body, err := cl.links(ctx)
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	return formatLinks(c.stdout, resp.GetLinks(), c.now())
}

// keygen prints a new private key and its public key, one a line.
func (c *cli) keygen() error {
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return fmt.Errorf("generating a key: %w", err)
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n%s\n", key, key.PublicKey())
	return err
}

// neighbors prints the BGP neighbours, as a table or as the API's JSON.
func (c *cli) neighbors(ctx context.Context, cl *client, raw bool) error {
	resp, body, err := cl.neighbors(ctx)
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	return formatNeighbors(c.stdout, resp.GetNeighbors())
}

// routes prints the originated, learned and installed routes, as tables or
// as the API's JSON.
func (c *cli) routes(ctx context.Context, cl *client, raw bool) error {
	resp, body, err := cl.routes(ctx)
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	return formatRoutes(c.stdout, resp)
}

// listServices prints the service prefixes, as a table or as the API's JSON.
func (c *cli) listServices(ctx context.Context, cl *client, raw bool) error {
	resp, body, err := cl.services(ctx)
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	return formatServices(c.stdout, resp.GetServices())
}

// addService announces prefix and says so, or prints the API's JSON.
func (c *cli) addService(ctx context.Context, cl *client, prefix netip.Prefix, raw bool) error {
	svc, body, err := cl.addService(ctx, prefix)
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	_, err = fmt.Fprintf(c.stdout, "service %s added\n", svc.GetPrefix())
	return err
}

// deleteService withdraws prefix and says so; with -o json it prints
// nothing, as the API answers with no body.
func (c *cli) deleteService(ctx context.Context, cl *client, prefix netip.Prefix, raw bool) error {
	if err := cl.deleteService(ctx, prefix); err != nil {
		return err
	}
	if raw {
		return nil
	}
	_, err := fmt.Fprintf(c.stdout, "service %s deleted\n", prefix)
	return err
}
