package fib_test

import (
	"testing"

	"github.com/roamnet/roam/bgp/fib"
	"github.com/roamnet/roam/tunnel"
)

// One protocol number for everything roam installs: `ip route show proto
// 114` lists tunnel routes and fib routes alike. (An external test package,
// so package tunnel may one day import fib without a cycle.)
func TestProtocolIsTunnels(t *testing.T) {
	if fib.Protocol != tunnel.RouteProtocol {
		t.Errorf("fib.Protocol %d, tunnel.RouteProtocol %d", fib.Protocol, tunnel.RouteProtocol)
	}
}
