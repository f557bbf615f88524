package main

import (
	"fmt"
	"os"
)

// enableForwarding makes roamd's network namespace route between the hub's
// peers: IPv4 and IPv6 forwarding on, and no ICMP redirects from dev. A hub
// forwards from one peer back out the same WireGuard device to another, and
// the kernel would otherwise tell the sender to use the other peer directly,
// which on a layer-3 tunnel it cannot. The effective send_redirects is "all"
// OR the device's, so both are cleared.
func enableForwarding(dev string) error {
	for _, f := range []struct{ path, value string }{
		{"/proc/sys/net/ipv4/ip_forward", "1"},
		{"/proc/sys/net/ipv6/conf/all/forwarding", "1"},
		{"/proc/sys/net/ipv4/conf/all/send_redirects", "0"},
		{"/proc/sys/net/ipv4/conf/" + dev + "/send_redirects", "0"},
	} {
		if err := os.WriteFile(f.path, []byte(f.value+"\n"), 0o644); err != nil {
			return fmt.Errorf("enable forwarding: %w", err)
		}
	}
	return nil
}
