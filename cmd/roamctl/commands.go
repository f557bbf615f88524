package main

import (
	"context"
	"fmt"

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

// keygen prints a new private key and its public key, one a line.
func (c *cli) keygen() error {
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return fmt.Errorf("generating a key: %w", err)
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n%s\n", key, key.PublicKey())
	return err
}
