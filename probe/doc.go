// Package probe owns roamd's measurement of each tunnel: STAMP-style
// (RFC 8762) probes sent inside every tunnel and reflected by the peer, the
// estimators that turn their outcomes into figures (SRTT/RTTVAR per RFC 6298,
// interarrival jitter per RFC 3550, loss over a sliding window, each way when
// the reflector keeps its own counter, and a babeld-style link cost with its
// smoothing), and the per-peer up/down state that is our BFD.
//
// The decisions are pure: estimators are small value types whose methods
// return updated copies, MissThreshold chooses the detect multiplier from the
// measured loss, and a Machine steps over events (probe sent, reply received,
// timer) and returns a Ready saying what changed. They read no clock, open no
// socket and draw no randomness of their own; callers pass times and a random
// source in, so tests replay recorded loss patterns on a simulated clock.
//
// It must not make routing decisions: it publishes per-peer results (figures,
// cost, up/down) and cmd/roamd wires them to bgp, which turns cost into
// local-pref and MED and a down peer into withdrawn routes. It must not
// import bgp, tunnel or mobility, nor change any route or WireGuard setting.
package probe
