package main

import (
	"net"
	"testing"
	"time"

	"github.com/roamnet/roam/testbed/labtest"
)

// TestNATMappingBehaviour sends from one source port of host1 to two
// destinations on the internet and reads the public port each one sees: the
// endpoint-independent NAT (nat lab) shows both the same port, the symmetric
// one (natsym lab) a different port per destination.
func TestNATMappingBehaviour(t *testing.T) {
	for _, tt := range []struct {
		lab  string
		same bool
	}{{"nat", true}, {"nat-symmetric", false}} {
		t.Run(tt.lab, func(t *testing.T) {
			file := labtest.LabFile(tt.lab)
			labtest.Deploy(t, file)
			topo := mustTopology(t, file)
			ns := func(node string) string { return "clab-" + topo.Name + "-" + node }
			// The hub and nat2's public address stand for two internet hosts.
			hub := labtest.ListenUDP(t, ns("hub"), "203.0.113.1:5000")
			other := labtest.ListenUDP(t, ns("nat2"), "203.0.113.12:5001")
			for _, srcPort := range []string{"40000", "40001", "40002"} {
				src := labtest.ListenUDP(t, ns("host1"), "192.0.2.2:"+srcPort)
				p1 := publicPort(t, src, hub, "203.0.113.1:5000")
				p2 := publicPort(t, src, other, "203.0.113.12:5001")
				t.Logf("%s: host1:%s is seen as port %d by the hub and %d by the other host", tt.lab, srcPort, p1, p2)
				if (p1 == p2) != tt.same {
					t.Errorf("%s: host1:%s mapped to %d and %d; want same port: %v", tt.lab, srcPort, p1, p2, tt.same)
				}
			}
		})
	}
}

// publicPort sends one datagram from src to dst and returns the source port
// the receiver saw (the NAT's mapping), which must be on nat1's address.
func publicPort(t *testing.T, src, receiver *net.UDPConn, dst string) int {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.WriteToUDP([]byte("mapping?"), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = receiver.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, from, err := receiver.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("datagram to %s not received: %v", dst, err)
	}
	if from.IP.String() != "203.0.113.11" {
		t.Errorf("datagram to %s came from %s, want nat1's 203.0.113.11", dst, from)
	}
	return from.Port
}
