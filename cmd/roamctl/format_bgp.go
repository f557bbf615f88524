package main

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/roamnet/roam/api/roampb"
)

// formatNeighbors prints the BGP neighbours as an aligned table, sorted by
// address.
func formatNeighbors(w io.Writer, ns []*roampb.BgpNeighbor) error {
	ns = slices.Clone(ns)
	slices.SortStableFunc(ns, func(a, b *roampb.BgpNeighbor) int { return compareAddrs(a.GetAddress(), b.GetAddress()) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NEIGHBOR\tADDRESS\tKIND\tASN\tSTATE\tUPTIME\tRECEIVED\tACCEPTED\tADVERTISED")
	for _, n := range ns {
		uptime := "-"
		if n.GetUptime() != nil {
			uptime = humanDuration(n.GetUptime().AsDuration())
		}
		asn := "-"
		if n.GetAsn() != 0 {
			asn = fmt.Sprint(n.GetAsn())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n",
			orDash(n.GetDescription()),
			orDash(n.GetAddress()),
			orDash(n.GetKind()),
			asn,
			orDash(n.GetState()),
			uptime,
			n.GetReceived(), n.GetAccepted(), n.GetAdvertised())
	}
	return tw.Flush()
}

// routesLegend explains the marks in the first column of formatRoutes.
const routesLegend = "* best path, S stale (kept through a graceful restart)"

// formatRoutes prints three sections, ORIGINATED, LEARNED and INSTALLED, each
// a table sorted by prefix, or "(none)". The first column marks BGP's best
// path with * (as gobgp does) and stale routes with S; a legend follows.
func formatRoutes(w io.Writer, rs *roampb.ListRoutesResponse) error {
	var b strings.Builder
	marked := false

	b.WriteString("ORIGINATED\n")
	if len(rs.GetOriginated()) == 0 {
		b.WriteString("(none)\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\tPREFIX\tNEXT HOP\tAS PATH\tLOCAL PREF\tMED")
		for _, r := range sortedRoutes(rs.GetOriginated()) {
			mark := routeMark(r.GetBest(), r.GetStale())
			marked = marked || mark != ""
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", mark, orDash(r.GetPrefix()), orDash(r.GetNextHop()),
				asPath(r.GetAsPath()), r.GetLocalPref(), r.GetMed())
		}
		tw.Flush()
	}

	b.WriteString("\nLEARNED\n")
	if len(rs.GetLearned()) == 0 {
		b.WriteString("(none)\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\tPREFIX\tNEXT HOP\tAS PATH\tLOCAL PREF\tMED\tFROM")
		for _, r := range sortedRoutes(rs.GetLearned()) {
			mark := routeMark(r.GetBest(), r.GetStale())
			marked = marked || mark != ""
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", mark, orDash(r.GetPrefix()), orDash(r.GetNextHop()),
				asPath(r.GetAsPath()), r.GetLocalPref(), r.GetMed(), routeFrom(r))
		}
		tw.Flush()
	}

	b.WriteString("\nINSTALLED\n")
	if len(rs.GetInstalled()) == 0 {
		b.WriteString("(none)\n")
	} else {
		inst := slices.Clone(rs.GetInstalled())
		slices.SortStableFunc(inst, func(x, y *roampb.InstalledRoute) int {
			return cmp.Or(comparePrefixes(x.GetPrefix(), y.GetPrefix()), cmp.Compare(x.GetTable(), y.GetTable()))
		})
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\tPREFIX\tDEVICE\tGATEWAY\tPEER\tTABLE")
		for _, r := range inst {
			mark := routeMark(false, r.GetStale())
			marked = marked || mark != ""
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", mark, orDash(r.GetPrefix()), orDash(r.GetDevice()),
				orDash(r.GetGateway()), orDash(r.GetPeer()), r.GetTable())
		}
		tw.Flush()
	}

	if marked {
		b.WriteString("\n" + routesLegend + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sortedRoutes sorts by prefix, the best path first, then by neighbour.
func sortedRoutes(rs []*roampb.Route) []*roampb.Route {
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b *roampb.Route) int {
		if c := comparePrefixes(a.GetPrefix(), b.GetPrefix()); c != 0 {
			return c
		}
		if a.GetBest() != b.GetBest() {
			if a.GetBest() {
				return -1
			}
			return 1
		}
		return compareAddrs(a.GetFrom(), b.GetFrom())
	})
	return rs
}

// routeMark is the first column of a route: * for the best path, S for a
// stale route.
func routeMark(best, stale bool) string {
	var m string
	if best {
		m += "*"
	}
	if stale {
		m += "S"
	}
	return m
}

// asPath is the AS path as gobgp shows it, "65001 65002"; "-" when empty.
func asPath(path []uint32) string {
	if len(path) == 0 {
		return "-"
	}
	s := make([]string, len(path))
	for i, as := range path {
		s[i] = fmt.Sprint(as)
	}
	return strings.Join(s, " ")
}

// routeFrom names the neighbour a route came from: "b (100.64.0.2)".
func routeFrom(r *roampb.Route) string {
	switch name, addr := r.GetFromName(), r.GetFrom(); {
	case name != "" && addr != "":
		return name + " (" + addr + ")"
	case name != "":
		return name
	default:
		return orDash(addr)
	}
}

// formatServices prints the service prefixes as a table, sorted.
func formatServices(w io.Writer, svcs []*roampb.Service) error {
	svcs = slices.Clone(svcs)
	slices.SortStableFunc(svcs, func(a, b *roampb.Service) int { return comparePrefixes(a.GetPrefix(), b.GetPrefix()) })
	var b strings.Builder
	b.WriteString("PREFIX\n")
	for _, s := range svcs {
		b.WriteString(orDash(s.GetPrefix()) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// comparePrefixes orders prefixes as netip does (IPv4 first, then by address
// and length); text that is not a prefix comes last, by its text.
func comparePrefixes(a, b string) int {
	pa, errA := netip.ParsePrefix(a)
	pb, errB := netip.ParsePrefix(b)
	switch {
	case errA == nil && errB == nil:
		return pa.Compare(pb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// compareAddrs orders addresses as netip does; text that is not an address
// comes last, by its text.
func compareAddrs(a, b string) int {
	xa, errA := netip.ParseAddr(a)
	xb, errB := netip.ParseAddr(b)
	switch {
	case errA == nil && errB == nil:
		return xa.Compare(xb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}
