// Package tunnel owns the node's one WireGuard device (roam0): creating it
// (embedded wireguard-go on a TUN device, or kernel WireGuard when the module
// works), configuring it declaratively from a whole desired State (key, port,
// peers, allowed IPs, endpoints, the device's addresses, link up, MTU, and the
// kernel routes to each peer's allowed IPs), reading per-peer status, and
// removing what it created. Its Bind carries WireGuard and STUN on one UDP
// port: STUN packets go to a handler (ICE), everything else to WireGuard.
//
// WireGuard is configured through wgctrl in both modes (genetlink for kernel
// devices, the UAPI socket for userspace ones), links, addresses and routes
// through netlink; both sit behind small interfaces with in-memory fakes, so
// Apply is tested without root.
//
// It must not: add addresses or routes anywhere but on its own device; touch
// routes it did not install (its routes carry RouteProtocol); install a
// default route (a /0 allowed IP is kept in WireGuard but gets no kernel
// route); re-set a peer's endpoint that WireGuard roaming moved, unless the
// desired endpoint itself changed; decide which peers or prefixes exist (that
// is the caller's State) or speak BGP.
//
// A Device belongs to the network namespace of the thread that opened it:
// everything it creates later (UDP sockets on a rebind, netlink requests)
// is created there, even when called from a thread in another namespace.
package tunnel
