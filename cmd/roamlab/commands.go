package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/roamnet/roam/testbed"
)

// root is where lab state lives; tests point it elsewhere.
var root = envOr("ROAMLAB_ROOT", testbed.DefaultRoot)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("roamlab "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parse parses flags and rejects leftovers unless extra allows them.
func parse(fs *flag.FlagSet, args []string, extra bool) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	if !extra && fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

func openLab(file string) (*testbed.Lab, error) {
	t, err := testbed.LoadTopology(file)
	if err != nil {
		return nil, err
	}
	return testbed.NewLab(t, root, "", slog.Default())
}

// nodeLab finds the lab of a node given on the command line.
func nodeLab(file, node string) (*testbed.Lab, string, error) {
	if node == "" {
		return nil, "", fmt.Errorf("%w: -n NODE is required", errUsage)
	}
	t, name, err := testbed.FindNode(root, file, node)
	if err != nil {
		return nil, "", err
	}
	l, err := testbed.NewLab(t, root, "", slog.Default())
	return l, name, err
}

func cmdDeploy(ctx context.Context, args []string) error {
	fs := newFlags("deploy")
	file := fs.String("t", "", "topology file")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: deploy: -t FILE is required", errUsage)
	}
	l, err := openLab(*file)
	if err != nil {
		return err
	}
	if err := l.Deploy(ctx); err != nil {
		return err
	}
	return printInspect([]*testbed.Lab{l}, "table")
}

func cmdDestroy(ctx context.Context, args []string) error {
	fs := newFlags("destroy")
	file := fs.String("t", "", "topology file")
	all := fs.Bool("all", false, "destroy every deployed lab")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if (*file == "") == !*all {
		return fmt.Errorf("%w: destroy: give exactly one of -t FILE or --all", errUsage)
	}
	labs, err := selectLabs(*file, *all)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range labs {
		errs = append(errs, l.Destroy(ctx))
	}
	return errors.Join(errs...)
}

// selectLabs is the lab of file, or with all (or no file) every deployed lab.
func selectLabs(file string, all bool) ([]*testbed.Lab, error) {
	if file != "" && !all {
		l, err := openLab(file)
		if err != nil {
			return nil, err
		}
		return []*testbed.Lab{l}, nil
	}
	topos, err := testbed.Deployed(root)
	if err != nil {
		return nil, err
	}
	var labs []*testbed.Lab
	for _, t := range topos {
		l, err := testbed.NewLab(t, root, "", slog.Default())
		if err != nil {
			return nil, err
		}
		labs = append(labs, l)
	}
	return labs, nil
}

func cmdInspect(args []string) error {
	fs := newFlags("inspect")
	file := fs.String("t", "", "topology file (default: every deployed lab)")
	format := fs.String("format", "table", "output format: table or json")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: inspect: --format %q: want table or json", errUsage, *format)
	}
	labs, err := selectLabs(*file, false)
	if err != nil {
		return err
	}
	return printInspect(labs, *format)
}

func cmdExec(args []string) int {
	fs := newFlags("exec")
	file := fs.String("t", "", "topology file")
	node := fs.String("n", "", "node")
	if err := parse(fs, args, true); err != nil {
		fmt.Fprintf(os.Stderr, "roamlab: %v\n", err)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "roamlab: exec: no command given (roamlab exec -n NODE -- CMD ARGS...)")
		return 2
	}
	l, name, err := nodeLab(*file, *node)
	if err == nil {
		var cmd *exec.Cmd
		if cmd, err = l.Command(name, fs.Args()...); err == nil {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			err = runForwardingSignals(cmd)
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return exit.ExitCode()
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "roamlab: %v\n", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// runForwardingSignals runs cmd and passes the signals a user sends roamlab
// on to it, as if roamlab were not in between.
func runForwardingSignals(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			return err
		}
	}
}

func cmdLink(args []string) error {
	if len(args) == 0 || args[0] != "set" {
		return fmt.Errorf("%w: link: want \"link set\"", errUsage)
	}
	fs := newFlags("link set")
	file := fs.String("t", "", "topology file")
	node := fs.String("n", "", "node")
	iface := fs.String("i", "", "interface")
	down := fs.Bool("down", false, "cut the link")
	up := fs.Bool("up", false, "repair the link")
	mode := fs.String("mode", string(testbed.CutCarrier), "how a cut looks: carrier (both ends lose carrier) or drop (silent loss both ways)")
	if err := parse(fs, args[1:], false); err != nil {
		return err
	}
	if *down == *up {
		return fmt.Errorf("%w: link set: give exactly one of --down or --up", errUsage)
	}
	if *iface == "" {
		return fmt.Errorf("%w: link set: -i IFACE is required", errUsage)
	}
	l, name, err := nodeLab(*file, *node)
	if err != nil {
		return err
	}
	if *down {
		m, err := testbed.ParseCutMode(*mode)
		if err != nil {
			return fmt.Errorf("%w: link set: %v", errUsage, err)
		}
		return l.Cut(name, *iface, m)
	}
	return l.Repair(name, *iface)
}

func cmdNsinit() error {
	return testbed.Nsinit(os.Stdin, os.Stdout)
}

func cmdTools(ctx context.Context, args []string) error {
	if len(args) < 2 || args[0] != "netem" || (args[1] != "set" && args[1] != "show") {
		return fmt.Errorf("%w: tools: want \"tools netem set\" or \"tools netem show\"", errUsage)
	}
	if args[1] == "show" {
		return cmdNetemShow(args[2:])
	}
	return cmdNetemSet(ctx, args[2:])
}
