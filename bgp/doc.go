// Package bgp owns roamd's BGP speaker: an embedded GoBGP v3 server, the
// policies that decide what is imported and exported, and the translation of
// GoBGP's best paths into plain values (Route, RouteEvent, NeighborState).
//
// It is the only package that imports GoBGP; no GoBGP type (api.*, server.*,
// log.*) appears in its exported API. Policies are reject-by-default in both
// directions and are installed before any neighbour is added.
//
// Neighbours are of two kinds. KindRoam is another roamd, over the overlay;
// KindExternal is a router on the underlay (BIRD, FRR, gobgpd). A node
// exports what it originates through Announce to everyone, with
// next-hop-self towards external neighbours; a hub (Config.Transit) also
// passes routes between neighbours. Import rejects defaults, martians, the
// overlay pool, our own prefixes and, from external neighbours, the internal
// (pod and service) ranges; each rejection is logged once. SetNeighbors
// changes the neighbours of a running speaker; sessions with neighbours that
// did not change are kept.
//
// SetQuality applies what probes measured of the tunnel to a roam
// neighbour: routes from it get a local-pref and routes to it a MED that
// follow the link cost (through quality policies evaluated before the roam
// policies), and a tunnel that is down shuts the session and drops its
// routes at once.
//
// Graceful restart (RFC 4724) is on by default: Run ends its sessions by
// closing their TCP connections without a NOTIFICATION, so neighbours keep
// this node's routes while roamd restarts, and a speaker made with
// Config.Restarting tells them it is back.
//
// It must not write the kernel FIB or WireGuard AllowedIPs itself: it
// publishes best-path changes (Updates) and whoever consumes them installs the
// routes. GoBGP's gRPC API is served on Config.GRPCAddress (loopback by
// default) so the stock gobgp v3.37.0 CLI works against a running speaker.
//
// A program that uses TCP-MD5 (Neighbor.Password) must be built with
// //go:debug multipathtcp=0: Go's listeners are MPTCP by default since Go
// 1.24, and the kernel refuses TCP-MD5 keys on MPTCP sockets (Run then fails
// and says so).
package bgp
