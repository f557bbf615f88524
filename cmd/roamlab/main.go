// Command roamlab deploys containerlab topology files on network namespaces,
// without Docker, and impairs and cuts their links. See the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: roamlab COMMAND [flags]

commands:
  deploy  -t FILE                       create the lab described by a containerlab topology file
  destroy -t FILE | --all               remove a lab: processes, links, namespaces, state
  inspect [-t FILE] [--format table|json]
                                        nodes, state, interfaces and addresses of deployed labs
  exec    [-t FILE] -n NODE -- CMD ARGS...
                                        run a command inside a node (network and mount namespace)
  tools netem set  [-t FILE] -n NODE -i IFACE [--delay D] [--jitter D] [--loss PCT]
                   [--rate KBPS] [--corruption PCT]
                                        impair the egress of NODE:IFACE (no impairment flags: clear)
  tools netem show [-t FILE] -n NODE    impairments in force on a node
  link set [-t FILE] -n NODE -i IFACE --down|--up [--mode carrier|drop]
                                        cut or repair a link

NODE is a node's short name (when one lab is deployed or -t is given) or its
namespace name clab-<lab>-<node>.
`

// errUsage marks a command line error: exit code 2.
var errUsage = errors.New("usage")

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "deploy":
		err = cmdDeploy(ctx, args[1:])
	case "destroy":
		err = cmdDestroy(ctx, args[1:])
	case "inspect":
		err = cmdInspect(args[1:])
	case "exec":
		return cmdExec(args[1:])
	case "tools":
		err = cmdTools(ctx, args[1:])
	case "link":
		err = cmdLink(args[1:])
	case "nsinit": // internal: holds a node's new mount namespace
		err = cmdNsinit()
	case "emulate": // internal: the link emulator of one interface
		err = cmdEmulate(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "roamlab: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "roamlab: %v\n", err)
		return 2
	default:
		fmt.Fprintf(os.Stderr, "roamlab: %v\n", err)
		return 1
	}
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("ROAMLAB_LOG"))); err != nil {
		return slog.LevelInfo
	}
	return l
}
