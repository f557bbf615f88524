// Package mobility watches the node's underlay: its links, their global
// addresses, and the kernel's current path to each tracked target (the
// hubs' underlay addresses). It turns bursts of netlink messages into one
// Event each, carrying the snapshots before and after and their pure Delta,
// and says whether the change is a handover (traffic to a target moves).
//
// Decisions are pure functions over Snapshot values (Delta, Change.Handover);
// the OS sits behind a small interface with a netlink implementation, so the
// Watcher's coalescing is tested in memory.
//
// It must not act on a change: it never adds, removes or changes links,
// addresses or routes, sends no traffic, and does not ping hubs or restart
// ICE (the caller does, on an Event). Nothing it reports about an ignored
// interface (Config.Ignore: the WireGuard device, pod interfaces) reaches an
// Event.
//
// A Watcher belongs to the network namespace of the thread that called
// NewWatcher: its netlink sockets are opened there, whatever thread later
// runs it.
package mobility
