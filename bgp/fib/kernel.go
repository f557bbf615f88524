package fib

import (
	"net/netip"
)

// kernel is the route operations fib needs on one routing table, in one
// network namespace: netlink, or an in-memory fake in tests. Errors of
// individual routes are the kernel's errnos (syscall.Errno), so fib can tell
// an unreachable gateway (ENETUNREACH, EHOSTUNREACH) and a route that is
// someone else's (EEXIST) from other failures.
type kernel interface {
	// Routes dumps every route with Protocol in table, of both families.
	Routes(table int) ([]kroute, error)
	// Apply carries out ops in order in table and returns one error per op
	// (nil: done). Every op is attempted, whatever the others did. It sets
	// the Dev of each route it added or replaced to the device the kernel
	// chose for it ("" if it cannot tell).
	Apply(table int, ops []op) []error
	Close() error
}

// kroute is a route as the kernel reports it.
type kroute struct {
	Prefix netip.Prefix
	// Gateway is the next hop; invalid for a device route, a multipath
	// route or one using a nexthop object.
	Gateway netip.Addr
	// Dev is the output device's name; "" for a multipath route or when
	// the kernel gave none.
	Dev       string
	Multipath bool
	// Unicast is false for blackhole, unreachable, prohibit and the like.
	Unicast bool
	Metric  int // RTA_PRIORITY as dumped: IPv6 routes added without one show 1024
	TOS     int
}

// route is kr's destination and gateway.
func (kr kroute) route() Route { return Route{Prefix: kr.Prefix, Gateway: kr.Gateway} }

// opKind is what an op does.
type opKind int

const (
	// opAdd creates a route and fails with EEXIST if the table has one
	// with the same key (prefix, TOS, metric), whoever owns it.
	opAdd opKind = iota
	// opChange replaces the route with the same key with the new one in
	// one message (NLM_F_REPLACE): traffic never sees no route.
	opChange
	// opDelete deletes exactly the dumped route: prefix, TOS, metric,
	// protocol and gateway must all match.
	opDelete
)

func (k opKind) String() string {
	switch k {
	case opAdd:
		return "add"
	case opChange:
		return "change"
	case opDelete:
		return "delete"
	}
	return "op?"
}

// op is one change to the kernel table. Adds and changes carry the route to
// install (Metric and TOS zero: the kernel's default); a delete carries the
// route as dumped. Old is the route a change replaces (for logs).
type op struct {
	Kind  opKind
	Route kroute
	Old   kroute
}
