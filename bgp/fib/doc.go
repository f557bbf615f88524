// Package fib installs the routes roamd learned over BGP from external
// routers on the underlay into one kernel routing table:
// `10.99.0.0/24 via 198.51.100.2 proto 114 table T`. The kernel chooses the
// output device from the gateway, as `ip route add ... via` does.
//
// It owns exactly the routes in its table that have protocol 114 (Protocol,
// the same number package tunnel marks its routes with, so `ip route show
// proto 114` lists everything roam installed), one next hop with a gateway,
// and a device not in Config.Exclude. Sync takes the whole desired set and
// makes the owned routes exactly that: it dumps the table once, computes the
// difference with a pure function, adds new routes without replacing
// anything (NLM_F_EXCL), replaces those whose gateway changed (one atomic
// RTM_NEWROUTE) and deletes the rest. Changes go to the kernel 256 to a
// system call, and the kernel answers only those that fail, so 10 000 routes
// take tens of milliseconds. Update does the same for the prefixes that
// changed only, without a dump: fib remembers what the last Sync found and
// what it changed since (the kernel echoes each route it adds or replaces,
// with the device it chose), so a batch costs what it changes. A route
// someone else deletes or adds behind fib's back is set right by the next
// Sync.
//
// A route that fails (its gateway is not on a connected subnet, or another
// owner has its prefix) is reported in the error and leaves the kernel's
// route for its prefix as it was; the others are installed all the same.
// The kernel deletes routes whose device is set down or removed; the caller
// syncs again when the underlay changes.
//
// It must not touch any other route: not those on the tunnel device (package
// tunnel reconciles those, and routes to WireGuard peers are AllowedIPs
// there, not gateways here), not those of other protocols (kernel, static,
// BIRD, FRR), not those in other tables, not multipath or gateway-less
// routes. It never writes /etc (no rt_protos entry) and changes nothing
// outside the network namespace its netlink sockets were opened in.
package fib
