package main

import (
	"fmt"
	"os"
)

// enableForwarding turns on IPv4 and IPv6 forwarding in roamd's network
// namespace: a hub routes between its peers.
func enableForwarding() error {
	for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("enable forwarding: %w", err)
		}
	}
	return nil
}
