package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		ASN:      4200000001,
		RouterID: netip.MustParseAddr("100.64.0.1"),
		Neighbors: []Neighbor{
			{Address: netip.MustParseAddr("100.64.0.2"), ASN: 4200000002},
		},
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(c *Config)
		wantErr string // substring; "" = valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"missing ASN", func(c *Config) { c.ASN = 0 }, "ASN is required"},
		{"public ASN", func(c *Config) { c.ASN = 65001 }, "ASN 65001 is not in the private range 4200000000-4294967294"},
		{"reserved last ASN", func(c *Config) { c.ASN = 4294967295 }, "ASN 4294967295 is not in the private range"},
		{"public ASN allowed", func(c *Config) { c.ASN = 65001; c.AllowPublicASN = true }, ""},
		{"missing router id", func(c *Config) { c.RouterID = netip.Addr{} }, "RouterID is required"},
		{"ipv6 router id", func(c *Config) { c.RouterID = netip.MustParseAddr("fd00::1") }, `RouterID "fd00::1" is not a non-zero IPv4 address`},
		{"zero router id", func(c *Config) { c.RouterID = netip.MustParseAddr("0.0.0.0") }, `RouterID "0.0.0.0"`},
		{"listen port too big", func(c *Config) { c.ListenPort = 70000 }, "ListenPort 70000 is not a port"},
		{"listen port -2", func(c *Config) { c.ListenPort = -2 }, "ListenPort -2"},
		{"do not listen", func(c *Config) { c.ListenPort = -1 }, ""},
		{"bad grpc address", func(c *Config) { c.GRPCAddress = "127.0.0.1" }, `GRPCAddress "127.0.0.1"`},
		{"unix grpc", func(c *Config) { c.GRPCAddress = "unix:///run/roam/gobgp.sock" }, ""},
		{"hold time too short", func(c *Config) { c.HoldTime = 2 * time.Second; c.KeepaliveInterval = time.Second }, `HoldTime "2s" is below 3s`},
		{"fractional hold time", func(c *Config) { c.HoldTime = 4500 * time.Millisecond }, `HoldTime "4.5s" is not a whole number of seconds`},
		{"keepalive not below hold", func(c *Config) { c.KeepaliveInterval = 9 * time.Second }, `KeepaliveInterval "9s" is not below HoldTime "9s"`},
		{"neighbor without address", func(c *Config) { c.Neighbors[0].Address = netip.Addr{} }, "Neighbors[0].Address"},
		{"neighbor without ASN", func(c *Config) { c.Neighbors[0].ASN = 0 }, "Neighbors[0].ASN is required (neighbour 100.64.0.2)"},
		{"neighbor bad port", func(c *Config) { c.Neighbors[0].Port = 99999 }, "Neighbors[0].Port 99999 is not a port"},
		{"neighbor with zone", func(c *Config) { c.Neighbors[0].Address = netip.MustParseAddr("fe80::1%roam0") }, "has a zone"},
		{"duplicate neighbor", func(c *Config) { c.Neighbors = append(c.Neighbors, c.Neighbors[0]) }, `Neighbors[1]: Address "100.64.0.2" is configured twice`},
		{"external neighbor", func(c *Config) { c.Neighbors[0].Kind = KindExternal }, ""},
		{"unknown kind", func(c *Config) { c.Neighbors[0].Kind = 7 }, "Neighbors[0].Kind 7 is not KindRoam or KindExternal (neighbour 100.64.0.2)"},
		{"local address", func(c *Config) { c.Neighbors[0].LocalAddress = netip.MustParseAddr("100.64.0.1") }, ""},
		{"local address of the other family", func(c *Config) { c.Neighbors[0].LocalAddress = netip.MustParseAddr("fd00::1") }, `Neighbors[0].LocalAddress "fd00::1" is not an address of the family of 100.64.0.2`},
		{"password too long", func(c *Config) { c.Neighbors[0].Password = strings.Repeat("x", 81) }, "Neighbors[0].Password is 81 bytes, more than TCP-MD5's 80"},
		{"overlay pool with host bits", func(c *Config) { c.OverlayPool = []netip.Prefix{netip.MustParsePrefix("100.64.0.1/10")} }, `OverlayPool[0] "100.64.0.1/10" is not a network prefix`},
		{"overlay pool everything", func(c *Config) { c.OverlayPool = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }, `OverlayPool[0] "0.0.0.0/0" covers every address`},
		{"invalid internal prefix", func(c *Config) { c.InternalPrefixes = []netip.Prefix{{}} }, `InternalPrefixes[0] "invalid Prefix"`},
		{"internal prefixes", func(c *Config) {
			c.InternalPrefixes = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mod(&c)
			err := c.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate() = %v, want error containing %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "bgp: config: ") {
				t.Errorf("error %q lacks the bgp: config: prefix", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := validConfig()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.ListenPort != 179 || c.GRPCAddress != "127.0.0.1:50051" || c.HoldTime != 9*time.Second ||
		c.KeepaliveInterval != 3*time.Second || c.ConnectRetry != 2*time.Second || c.IdleHoldTime != time.Second ||
		!c.GracefulRestart() || c.Neighbors[0].Port != 179 || c.Neighbors[0].Kind != KindRoam ||
		c.MaxPrefixes != 1000 || c.Neighbors[0].MaxPrefixes != 1000 ||
		len(c.OverlayPool) != 1 || c.OverlayPool[0] != netip.MustParsePrefix("100.64.0.0/10") {
		t.Errorf("defaults not filled: %+v", c)
	}
}

func TestConfigMaxPrefixes(t *testing.T) {
	c := validConfig()
	c.MaxPrefixes = 50
	c.Neighbors = append(c.Neighbors, Neighbor{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, Kind: KindExternal, MaxPrefixes: 7})
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if got := []uint32{c.Neighbors[0].MaxPrefixes, c.Neighbors[1].MaxPrefixes}; got[0] != 50 || got[1] != 7 {
		t.Errorf("neighbour limits = %v, want [50 7] (Config.MaxPrefixes as default, the neighbour's own wins)", got)
	}
}

func TestNeighborKind(t *testing.T) {
	for _, k := range []NeighborKind{KindRoam, KindExternal} {
		got, err := ParseNeighborKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseNeighborKind(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	if _, err := ParseNeighborKind("ibgp"); err == nil || !strings.Contains(err.Error(), `"ibgp" is not roam or external`) {
		t.Errorf("ParseNeighborKind(ibgp) = %v", err)
	}
	if s := NeighborKind(9).String(); s != "NeighborKind(9)" {
		t.Errorf("String of an unknown kind = %q", s)
	}
}

func TestGRPCIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"", true},
		{"127.0.0.1:50051", true},
		{"[::1]:50051", true},
		{"localhost:50051", true},
		{"unix:///run/roam/gobgp.sock", true},
		{"0.0.0.0:50051", false},
		{":50051", false},
		{"192.0.2.1:50051", false},
		{"[2001:db8::1]:50051", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c := Config{GRPCAddress: tt.addr}
			if got := c.GRPCIsLoopback(); got != tt.want {
				t.Errorf("GRPCIsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}
