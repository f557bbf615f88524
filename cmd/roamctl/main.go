// Command roamctl shows the state of the local roamd through its REST API
// (its peers, the quality of its tunnels, its BGP sessions and routes),
// changes its BGP service prefixes and generates WireGuard keys.
//
//	roamctl [--api URL] [--token-file FILE] [-o table|json] COMMAND [ARGS]
//
// Exit codes: 0 success, 1 error, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/roamnet/roam/api"
)

const usage = `usage: roamctl [--api URL] [--token-file FILE] [-o table|json] COMMAND [ARGS]

commands:
  status              this node: name, role, public key, overlay addresses, tunnel device
  peers               WireGuard peers: endpoint, last handshake, traffic, allowed IPs
  links               tunnel quality to each peer, from roamd's probes: state and for how
                      long, RTT, RTT variation, jitter, loss (round trip, and forward and
                      backward when the peer counts them), cost, local pref, flaps
  neighbors           BGP sessions: address, kind (roam or external), AS, state, uptime,
                      routes received, accepted and advertised
  routes              BGP routes, originated and learned (* best path, S stale: kept
                      through a graceful restart), and those installed in the kernel
  paths               each peer's path: direct (the ICE pair WireGuard uses) or through
                      a hub, ICE state, endpoint, since when, restarts
  events [--follow]   handovers: when an underlay change was seen and when the hub path,
                      each direct path and the routes were back; --follow waits for more
  service list        service prefixes this node announces by BGP
  service add PREFIX  announce PREFIX, e.g. 10.96.0.0/24 or fd00:96::/64 (needs the token)
  service del PREFIX  stop announcing PREFIX (needs the token)
  keygen              a new WireGuard private key, and on the next line its public key

flags:
  --api URL          roamd's REST API (default: $ROAMCTL_API, else ` + defaultAPI + `)
  --token-file FILE  file holding roamd's API token (its api.token_file), for service
                     add and del (default: the token in $ROAMCTL_TOKEN)
  -o FORMAT          output: table (default), or json (the API's JSON as it is; it
                     has the full public keys; service del prints nothing)
`

// defaultAPI is roamd's default REST address.
const defaultAPI = "http://" + api.DefaultAddr

// usageError is a command line error: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// cli is roamctl with its environment, so tests can run it.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now}
	code := c.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run parses args, runs the command and returns the exit code.
func (c *cli) run(ctx context.Context, args []string) int {
	err := c.dispatch(ctx, args)
	var uerr *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.stdout, usage)
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(c.stderr, "roamctl: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(c.stderr, "roamctl: %v\n", err)
		return 1
	}
}

// options are the flags, given before or after the command.
type options struct {
	api, tokenFile, output string
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	opts := options{api: c.getenv("ROAMCTL_API"), output: "table"}
	if opts.api == "" {
		opts.api = defaultAPI
	}
	global := newFlagSet("roamctl")
	global.StringVar(&opts.api, "api", opts.api, "")
	global.StringVar(&opts.tokenFile, "token-file", "", "")
	global.StringVar(&opts.output, "o", opts.output, "")
	if err := parse(global, args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		return usageErrorf("no command")
	}
	cmd, rest := global.Arg(0), global.Args()[1:]

	switch cmd {
	case "events":
		return c.eventsCommand(ctx, opts, rest)
	case "paths":
		return c.pathsCommand(ctx, opts, rest)
	}
	// Each command takes its flags anywhere after its name.
	sub := newFlagSet(cmd)
	switch cmd {
	case "status", "peers", "links", "neighbors", "routes", "service":
		sub.StringVar(&opts.output, "o", opts.output, "")
	case "keygen":
	default:
		return usageErrorf("unknown command %q", cmd)
	}
	if cmd == "service" {
		sub.StringVar(&opts.tokenFile, "token-file", opts.tokenFile, "")
	}
	words, err := parseInterspersed(sub, rest)
	if err != nil {
		return err
	}
	if cmd == "keygen" {
		if len(words) > 0 {
			return usageErrorf("keygen: unexpected argument %q", words[0])
		}
		return c.keygen()
	}
	if cmd == "service" {
		return c.service(ctx, opts, words)
	}
	if len(words) > 0 {
		return usageErrorf("%s: unexpected argument %q", cmd, words[0])
	}
	cl, raw, err := c.client(opts)
	if err != nil {
		return err
	}
	switch cmd {
	case "status":
		return c.status(ctx, cl, raw)
	case "peers":
		return c.peers(ctx, cl, raw)
	case "links":
		return c.links(ctx, cl, raw)
	case "neighbors":
		return c.neighbors(ctx, cl, raw)
	default:
		return c.routes(ctx, cl, raw)
	}
}

// service runs "service list", "service add PREFIX" and "service del
// PREFIX"; words are the arguments after "service".
func (c *cli) service(ctx context.Context, opts options, words []string) error {
	if len(words) == 0 {
		return usageErrorf("service: missing subcommand: add, del or list")
	}
	verb, words := words[0], words[1:]
	want := 1 // PREFIX
	switch verb {
	case "list":
		want = 0
	case "add", "del":
	default:
		return usageErrorf("service: unknown subcommand %q; want add, del or list", verb)
	}
	if len(words) < want {
		return usageErrorf("service %s: missing PREFIX, e.g. 10.96.0.0/24", verb)
	}
	if len(words) > want {
		return usageErrorf("service %s: unexpected argument %q", verb, words[want])
	}
	var prefix netip.Prefix
	if want == 1 {
		// Only the syntax: roamd says what else is wrong with a prefix.
		p, err := netip.ParsePrefix(words[0])
		if err != nil {
			return usageErrorf("service %s: %q is not a prefix like 10.96.0.0/24 or fd00:96::/64", verb, words[0])
		}
		prefix = p
	}
	cl, raw, err := c.client(opts)
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		return c.listServices(ctx, cl, raw)
	case "add":
		return withTokenHint(c.addService(ctx, cl, prefix, raw), cl.token)
	default:
		return withTokenHint(c.deleteService(ctx, cl, prefix, raw), cl.token)
	}
}

// client checks the output format and builds the API client; raw is -o json.
func (c *cli) client(opts options) (cl *client, raw bool, err error) {
	if opts.output != "table" && opts.output != "json" {
		return nil, false, usageErrorf("-o %q: want table or json", opts.output)
	}
	tok, err := c.token(opts.tokenFile)
	if err != nil {
		return nil, false, err
	}
	cl, err = newClient(opts.api, tok)
	if err != nil {
		return nil, false, usageErrorf("%v", err)
	}
	return cl, opts.output == "json", nil
}

// withTokenHint adds to a 401 for a call made without a token how to give
// roamctl one.
func withTokenHint(err error, token string) error {
	var aerr *apiError
	if token == "" && errors.As(err, &aerr) && aerr.code == 401 {
		return fmt.Errorf("%w; give roamctl roamd's API token with --token-file FILE or ROAMCTL_TOKEN", err)
	}
	return err
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses fs and marks its errors as usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageErrorf("%v", err)
}

// parseInterspersed parses flags anywhere in args ("service add PREFIX -o
// json") and returns the other arguments in order. After "--" everything is
// an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(words, rest...), nil
		}
		if len(rest) == 0 {
			return words, nil
		}
		words = append(words, rest[0])
		args = rest[1:]
	}
}
