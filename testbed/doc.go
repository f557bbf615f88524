// Package testbed deploys containerlab topology files on plain Linux network
// namespaces, without Docker: one network namespace and one private mount
// namespace per node, veth links created directly inside the lab's
// namespaces, Linux bridges in namespaces of their own.
//
// It owns the lab's namespaces, links and processes and nothing else: it never
// adds an address or route in the root namespace, never bridges to a real
// interface, and refuses topologies that would share the host's network
// namespace. Link impairments live in the emulator subpackage.
package testbed
