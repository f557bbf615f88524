// Command roamctl shows the state of the local roamd through its REST API and
// generates WireGuard keys.
//
//	roamctl [--api URL] [-o table|json] status|peers|keygen
//
// Exit codes: 0 success, 1 error, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/roamnet/roam/api"
)

const usage = `usage: roamctl [--api URL] [-o table|json] COMMAND

commands:
  status   this node: name, role, public key, overlay addresses, tunnel device
  peers    WireGuard peers: endpoint, last handshake, traffic, allowed IPs
  keygen   a new WireGuard private key, and on the next line its public key

flags:
  --api URL   roamd's REST API (default: $ROAMCTL_API, else ` + defaultAPI + `)
  -o FORMAT   output of status and peers: table (default), or json (the API's
              JSON as it is; it has the full public keys)
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

func (c *cli) dispatch(ctx context.Context, args []string) error {
	apiURL := c.getenv("ROAMCTL_API")
	if apiURL == "" {
		apiURL = defaultAPI
	}
	output := "table"
	global := newFlagSet("roamctl")
	global.StringVar(&apiURL, "api", apiURL, "")
	global.StringVar(&output, "o", output, "")
	if err := parse(global, args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		return usageErrorf("no command")
	}
	cmd, rest := global.Arg(0), global.Args()[1:]

	sub := newFlagSet(cmd)
	switch cmd {
	case "status", "peers":
		sub.StringVar(&output, "o", output, "")
	case "keygen":
	default:
		return usageErrorf("unknown command %q", cmd)
	}
	if err := parse(sub, rest); err != nil {
		return err
	}
	if sub.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q", cmd, sub.Arg(0))
	}
	if cmd == "keygen" {
		return c.keygen()
	}
	if output != "table" && output != "json" {
		return usageErrorf("-o %q: want table or json", output)
	}
	cl, err := newClient(apiURL)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if cmd == "status" {
		return c.status(ctx, cl, output == "json")
	}
	return c.peers(ctx, cl, output == "json")
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
