package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roamnet/roam/testbed/emulator"
)

func cmdNetemSet(ctx context.Context, args []string) error {
	fs := newFlags("tools netem set")
	file := fs.String("t", "", "topology file")
	node := fs.String("n", "", "node")
	iface := fs.String("i", "", "interface")
	delay := fs.Duration("delay", 0, "one-way delay added on egress, e.g. 50ms")
	jitter := fs.Duration("jitter", 0, "delay variation, e.g. 5ms")
	loss := fs.String("loss", "0", "random loss in percent, e.g. 10 or 10%")
	rate := fs.Uint64("rate", 0, "rate limit in kbit/s (0: none)")
	corrupt := fs.String("corruption", "0", "corrupted packets in percent")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *iface == "" {
		return fmt.Errorf("%w: tools netem set: -i IFACE is required", errUsage)
	}
	imp := emulator.Impairment{Delay: *delay, Jitter: *jitter, RateKbps: *rate}
	var err error
	if imp.Loss, err = percent("loss", *loss); err != nil {
		return err
	}
	if imp.Corrupt, err = percent("corruption", *corrupt); err != nil {
		return err
	}
	if err := imp.Validate(); err != nil {
		return fmt.Errorf("%w: tools netem set: %v", errUsage, err)
	}
	l, name, err := nodeLab(*file, *node)
	if err != nil {
		return err
	}
	if err := l.CheckInterface(name, *iface); err != nil {
		return err
	}
	if err := emulator.Apply(ctx, l.NetnsPath(name), *iface, imp, l.NodeDir(name), l.Exe); err != nil {
		return err
	}
	slog.Info("impairment set", "node", name, "iface", *iface, "impairment", imp.String())
	return nil
}

func percent(name, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: tools netem set: --%s %q: want a percentage such as 10 or 2.5%%", errUsage, name, s)
	}
	return v, nil
}

func cmdNetemShow(args []string) error {
	fs := newFlags("tools netem show")
	file := fs.String("t", "", "topology file")
	node := fs.String("n", "", "node")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	l, name, err := nodeLab(*file, *node)
	if err != nil {
		return err
	}
	st, err := emulator.Show(l.NodeDir(name))
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tIFACE\tDELAY\tJITTER\tLOSS\tRATE\tCORRUPT\tBACKEND\tRUNNING\tSENT\tLOST\tQUEUE-DROPS")
	shown := map[string]bool{}
	for _, s := range st {
		shown[s.Interface] = true
		i := s.Impairment
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%g%%\t%s\t%g%%\t%s\t%v\t%d\t%d\t%d\n", name, s.Interface, dur(i.Delay), dur(i.Jitter),
			i.Loss, rateStr(i.RateKbps), i.Corrupt, s.Backend, s.Running, s.Sent, s.Lost, s.QueueDrops)
	}
	for _, ifc := range l.Topo.Interfaces(name) {
		if !shown[ifc] {
			fmt.Fprintf(w, "%s\t%s\t-\t-\t-\t-\t-\tnone\t-\t-\t-\t-\n", name, ifc)
		}
	}
	return w.Flush()
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.String()
}

func rateStr(kbps uint64) string {
	if kbps == 0 {
		return "-"
	}
	return fmt.Sprintf("%dkbit", kbps)
}

func cmdEmulate(ctx context.Context, args []string) error {
	fs := newFlags("emulate")
	config := fs.String("config", "", "emulator config file")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *config == "" {
		return fmt.Errorf("%w: emulate: --config is required", errUsage)
	}
	return emulator.Serve(ctx, *config, slog.Default())
}
