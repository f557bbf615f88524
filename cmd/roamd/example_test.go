package main

import "testing"

// The shipped example must stay a valid configuration.
func TestExampleConfig(t *testing.T) {
	c, err := loadConfig("roamd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node != "edge-7" || len(c.peers) != 1 || len(c.addrs) != 2 || c.BGP.ASN != 4200000007 || c.peers[0].asn != 4200000254 {
		t.Errorf("example parsed as %+v", c)
	}
}
