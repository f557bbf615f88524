package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/roamnet/roam/testbed"
)

// printInspect prints the nodes of labs as a table (one row per interface)
// or as JSON {"nodes": [...]}.
func printInspect(labs []*testbed.Lab, format string) error {
	nodes := []testbed.NodeInfo{}
	for _, l := range labs {
		ns, err := l.Inspect()
		if err != nil {
			return err
		}
		nodes = append(nodes, ns...)
	}
	if format == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"nodes": nodes})
	}
	if len(nodes) == 0 {
		fmt.Println("no lab is deployed")
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "LAB\tNODE\tKIND\tSTATE\tPROCS\tIFACE\tLINK\tPEER\tADDRESSES")
	for _, n := range nodes {
		if len(n.Interfaces) == 0 {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t-\t-\t-\t-\n", n.Lab, n.Name, n.Kind, n.State, n.Processes)
		}
		for i, ifc := range n.Interfaces {
			lab, name, kind, state, procs := n.Lab, n.Name, n.Kind, n.State, fmt.Sprint(n.Processes)
			if i > 0 {
				lab, name, kind, state, procs = "", "", "", "", ""
			}
			link := ifc.State
			if ifc.Admin && !ifc.Carrier {
				link += " (no carrier)"
			}
			if ifc.Cut != "" {
				link += " (cut: " + ifc.Cut + ")"
			}
			addrs := strings.Join(ifc.Addresses, ",")
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", lab, name, kind, state, procs, ifc.Name, link, dash(ifc.Peer), dash(addrs))
		}
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
