package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/roamnet/roam/api/roampb"
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

// followWait is how long one request of roamctl events --follow waits for
// a change.
const followWait = 30 * time.Second

// eventsCommand runs "events [--follow]"; args are the arguments after
// "events". With --follow it prints the events, then every change to them,
// until ctx is done (Ctrl-C); with -o json, the API's JSON of the first
// answer and of every later one that has changes, one a line.
func (c *cli) eventsCommand(ctx context.Context, opts options, args []string) error {
	sub := newFlagSet("events")
	sub.StringVar(&opts.output, "o", opts.output, "")
	var follow bool
	sub.BoolVar(&follow, "follow", false, "")
	sub.BoolVar(&follow, "f", false, "")
	words, err := parseInterspersed(sub, args)
	if err != nil {
		return err
	}
	if len(words) > 0 {
		return usageErrorf("events: unexpected argument %q", words[0])
	}
	cl, raw, err := c.client(opts)
	if err != nil {
		return err
	}
	resp, body, err := cl.events(ctx, nil)
	if err != nil {
		return err
	}
	loc := c.now().Location()
	switch {
	case raw:
		err = writeRaw(c.stdout, body)
	case !follow:
		err = formatEvents(c.stdout, resp.GetEvents(), loc)
	}
	if err != nil || !follow {
		return err
	}
	// With -o json the follower only keeps track; the JSON is printed here.
	w := c.stdout
	if raw {
		w = io.Discard
	}
	f, err := newEventFollower(w, resp, loc)
	if err != nil {
		return err
	}
	for {
		q := url.Values{}
		q.Set("after", strconv.FormatUint(f.after(), 10))
		q.Set("revision", strconv.FormatUint(resp.GetRevision(), 10))
		q.Set("wait", followWait.String())
		next, body, err := cl.events(ctx, q)
		if ctx.Err() != nil {
			return nil // interrupted: the way to stop following
		}
		if err != nil {
			return err
		}
		if raw && next.GetRevision() != resp.GetRevision() && len(next.GetEvents()) > 0 {
			if err := writeRaw(c.stdout, body); err != nil {
				return err
			}
		}
		resp = next
		if err := f.update(resp); err != nil {
			return err
		}
	}
}

// pathsCommand runs "paths"; args are the arguments after "paths".
func (c *cli) pathsCommand(ctx context.Context, opts options, args []string) error {
	sub := newFlagSet("paths")
	sub.StringVar(&opts.output, "o", opts.output, "")
	words, err := parseInterspersed(sub, args)
	if err != nil {
		return err
	}
	if len(words) > 0 {
		return usageErrorf("paths: unexpected argument %q", words[0])
	}
	cl, raw, err := c.client(opts)
	if err != nil {
		return err
	}
	resp := &roampb.ListPathsResponse{}
	body, err := cl.get(ctx, resp, "paths")
	if err != nil {
		return err
	}
	if raw {
		return writeRaw(c.stdout, body)
	}
	return formatPaths(c.stdout, resp.GetPaths(), c.now())
}

// events fetches GET /v1/events with the query q; it returns the raw body
// too. A request with wait may take that long on top of the usual timeout.
func (cl *client) events(ctx context.Context, q url.Values) (*roampb.ListEventsResponse, []byte, error) {
	withQuery := *cl
	base := *cl.base
	base.RawQuery = q.Encode()
	withQuery.base = &base
	if wait, err := time.ParseDuration(q.Get("wait")); err == nil {
		withQuery.hc = &http.Client{Transport: cl.hc.Transport, Timeout: cl.hc.Timeout + wait}
	}
	resp := &roampb.ListEventsResponse{}
	body, err := withQuery.get(ctx, resp, "events")
	return resp, body, err
}
