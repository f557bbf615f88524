package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/roamnet/roam/api/roampb"
)

// formatLinks prints the probed links as an aligned table, sorted by peer.
// SINCE is how long the link has been in its state ("-": since roamd
// started); RTT, RTTVAR and JITTER are "-" before the first reply, LOSS
// before the first probe. LOSS is the round-trip loss, followed by the
// forward and backward loss when the peer's reflector counts them.
func formatLinks(w io.Writer, links []*roampb.Link, now time.Time) error {
	links = slices.Clone(links)
	slices.SortStableFunc(links, func(a, b *roampb.Link) int { return strings.Compare(linkPeer(a), linkPeer(b)) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tSTATE\tSINCE\tRTT\tRTTVAR\tJITTER\tLOSS\tCOST\tLPREF\tFLAPS")
	for _, l := range links {
		since := "-"
		if l.GetSince() != nil {
			since = humanDuration(now.Sub(l.GetSince().AsTime()))
		}
		loss := "-"
		if l.GetProbesSent() > 0 {
			loss = percent(l.GetLoss())
			if l.GetLossDirections() {
				loss += fmt.Sprintf(" (fwd %s bwd %s)", percent(l.GetLossForward()), percent(l.GetLossBackward()))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
			orDash(linkPeer(l)),
			orDash(l.GetState()),
			since,
			milliseconds(l.GetRtt()),
			milliseconds(l.GetRttvar()),
			milliseconds(l.GetJitter()),
			loss,
			orDashNumber(l.GetCost()),
			orDashNumber(l.GetLocalPref()),
			l.GetFlaps())
	}
	return tw.Flush()
}

// linkPeer names a link's peer: its name, else its shortened public key.
func linkPeer(l *roampb.Link) string {
	if l.GetName() != "" {
		return l.GetName()
	}
	return shortKey(l.GetPublicKey())
}

// milliseconds is d in milliseconds with one decimal, "12.3ms"; "-" when d
// is unset.
func milliseconds(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d.AsDuration())/float64(time.Millisecond))
}

// percent is a fraction in percent with one decimal, "1.5%".
func percent(f float64) string {
	return fmt.Sprintf("%.1f%%", f*100)
}

// orDashNumber is n, or "-" for 0 (not set).
func orDashNumber(n uint32) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
