package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roamnet/roam/api/roampb"
)

// writeRaw prints the API's JSON as it came, ending in a newline.
func writeRaw(w io.Writer, body []byte) error {
	if !bytes.HasSuffix(body, []byte("\n")) {
		body = append(body, '\n')
	}
	_, err := w.Write(body)
	return err
}

// formatStatus prints st as aligned "key: value" lines. Times are shown in
// now's location.
func formatStatus(w io.Writer, st *roampb.Status, now time.Time) error {
	started := "-"
	if st.GetStarted() != nil {
		started = st.GetStarted().AsTime().In(now.Location()).Format(time.RFC3339)
	}
	uptime := "-"
	if st.GetUptime() != nil {
		uptime = humanDuration(st.GetUptime().AsDuration())
	}
	port := "-"
	if st.GetListenPort() != 0 {
		port = fmt.Sprint(st.GetListenPort())
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, kv := range [][2]string{
		{"node", st.GetNode()},
		{"role", st.GetRole()},
		{"version", st.GetVersion()},
		{"public key", st.GetPublicKey()},
		{"overlay addresses", strings.Join(st.GetOverlayAddresses(), ", ")},
		{"device", st.GetDevice()},
		{"tunnel mode", st.GetTunnelMode()},
		{"listen port", port},
		{"started", started},
		{"uptime", uptime},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], orDash(kv[1]))
	}
	return tw.Flush()
}

// formatPeers prints peers as an aligned table, sorted by name. Public keys
// are shortened; -o json has them in full.
func formatPeers(w io.Writer, peers []*roampb.Peer, now time.Time) error {
	peers = slices.Clone(peers)
	slices.SortStableFunc(peers, func(a, b *roampb.Peer) int { return strings.Compare(a.GetName(), b.GetName()) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPUBLIC KEY\tENDPOINT\tHANDSHAKE\tRX\tTX\tALLOWED IPS")
	for _, p := range peers {
		handshake := "never"
		if p.GetLastHandshake() != nil {
			handshake = humanDuration(now.Sub(p.GetLastHandshake().AsTime())) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			orDash(p.GetName()),
			orDash(shortKey(p.GetPublicKey())),
			orDash(p.GetEndpoint()),
			handshake,
			humanBytes(p.GetRxBytes()),
			humanBytes(p.GetTxBytes()),
			orDash(strings.Join(p.GetAllowedIps(), ",")))
	}
	return tw.Flush()
}

// shortKey is the first 8 characters of a base64 key and an ellipsis.
func shortKey(k string) string {
	if len(k) <= 9 {
		return k
	}
	return k[:8] + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanBytes is n in binary units: "512 B", "1.2 KiB", "5.0 MiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= 1024
		if v < 1023.5 || unit == "PiB" { // 1023.5 would print as 1024
			if v < 9.95 {
				return fmt.Sprintf("%.1f %s", v, unit)
			}
			return fmt.Sprintf("%.0f %s", v, unit)
		}
	}
	panic("unreachable")
}

// humanDuration is d in at most two units, rounded down: "12s", "3m4s",
// "2h5m", "3d4h". A negative d (clock skew) is "0s".
func humanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	const minute, hour, day = 60, 3600, 86400
	switch {
	case s < minute:
		return fmt.Sprintf("%ds", s)
	case s < hour:
		return fmt.Sprintf("%dm%ds", s/minute, s%minute)
	case s < day:
		return fmt.Sprintf("%dh%dm", s/hour, s%hour/minute)
	default:
		return fmt.Sprintf("%dd%dh", s/day, s%day/hour)
	}
}
