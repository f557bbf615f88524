// Package bgp owns roamd's BGP speaker: an embedded GoBGP v3 server, the
// policies that decide what is imported and exported, and the translation of
// GoBGP's best paths into plain values (Route, RouteEvent, NeighborState).
//
// It is the only package that imports GoBGP; no GoBGP type (api.*, server.*,
// log.*) appears in its exported API. Policies are reject-by-default in both
// directions and are installed before any neighbour is added: a node exports
// only the prefixes it originates through Announce.
//
// It must not write the kernel FIB or WireGuard AllowedIPs itself: it
// publishes best-path changes (Updates) and whoever consumes them installs the
// routes. GoBGP's gRPC API is served on Config.GRPCAddress (loopback by
// default) so the stock gobgp v3.37.0 CLI works against a running speaker.
package bgp
