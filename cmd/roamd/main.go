// Command roamd is the roam daemon: it keeps WireGuard tunnels to its peers
// and serves a REST status API and Prometheus metrics. See the README.

// Go 1.24+ makes TCP listeners MPTCP, which refuses TCP-MD5 keys: BGP
// neighbours with a password would never come up.
//
//go:debug multipathtcp=0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// errConfig marks errors in what the operator gave roamd: exit code 2,
// nothing started.
var errConfig = errors.New("bad configuration")

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("roamd", flag.ContinueOnError)
	configPath := fs.String("config", "/etc/roam/roamd.yaml", "configuration file")
	check := fs.String("check-config", "", "validate this configuration file and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "roamd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch {
	case *showVersion:
		fmt.Println("roamd", version())
		return 0
	case *check != "":
		cfg, err := loadConfig(*check)
		if err != nil {
			fmt.Fprintf(os.Stderr, "roamd: %s: %v\n", *check, err)
			return 2
		}
		fmt.Printf("%s: ok (node %s, role %s, %d peers)\n", *check, cfg.Node, cfg.Role, len(cfg.Peers))
		return 0
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "roamd: %s: %v\n", *configPath, err)
		return 2
	}
	log := newLogger(cfg.Log)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := newDaemon(cfg, *configPath, log)
	if err == nil {
		err = d.Run(ctx)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errConfig):
		log.Error("not started", "err", err)
		return 2
	default:
		log.Error("stopped", "err", err)
		return 1
	}
}

func newLogger(c LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by the config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// version is the module version, or the VCS revision of a development build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if len(s.Value) > 12 {
				s.Value = s.Value[:12]
			}
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	return v
}
